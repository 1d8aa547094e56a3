// What the agent tests share: a silent logger, a clock whose uptime moves on each read, and a
// bounded wait for a condition.

import pino from "pino";

export const silent = pino({ level: "silent" });

let uptime = 0;
export const clock = { now: () => 1_700_000_000_000 + uptime, uptimeMs: () => (uptime += 10) };

/** Wait until check() holds, polling every 5 ms; fails naming what it waited for after ms. */
export async function until(check: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
