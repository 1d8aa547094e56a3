// A process's memory as the kernel accounts it: PSS (shared pages split between their users) and RSS.

import { readFileSync } from "node:fs";

/** PSS and RSS of one process, MB (smaps_rollup). */
export function footprint(pid: number): { pss: number; rss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { pss: Math.round(kib("Pss") / 1024), rss: Math.round(kib("Rss") / 1024) };
}
