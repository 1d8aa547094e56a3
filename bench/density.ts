// Instances side by side, for sizing a runner (the Kubernetes recipe): 1, 2 and 4 idle dinv
// instances started together on this machine; the QEMU RSS of each and the ready time of the last,
// against one instance alone in the same run (density_ratio: last ready with 4 / ready alone).
// Usage: node --import tsx bench/density.ts [--json]

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { table, untilPing } from "./lib.js";

async function together(n: number, log: (s: string) => void) {
  const all = await Promise.all(Array.from({ length: n }, () => DinvProcess.create()));
  const t0 = Date.now();
  for (const d of all) d.start();
  try {
    const ready = await Promise.all(all.map((d) => untilPing(Number(d.env.DINV_DOCKER_PORT), t0, 600_000)));
    await new Promise((r) => setTimeout(r, 10_000)); // settle to idle
    const rss = all.map((d) => {
      const pid = Number(readFileSync(join(d.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
      return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024);
    });
    const row = { instances: n, last_ready_ms: Math.max(...ready), qemu_rss_mb: rss, rss_total_mb: rss.reduce((a, b) => a + b, 0) };
    log(JSON.stringify(row));
    return row;
  } finally {
    await Promise.all(all.map(async (d) => {
      await d.stop("SIGTERM").catch(() => undefined);
      await d.kill();
    }));
  }
}

export async function benchDensity(log: (s: string) => void) {
  const rows = [];
  for (const n of [1, 2, 4]) rows.push(await together(n, log));
  return { rows, density_ratio: Number((rows[2]!.last_ready_ms / rows[0]!.last_ready_ms).toFixed(2)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
  const r = await benchDensity((s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else console.log(table([["instances", "ready of the last, ms", "QEMU RSS each, MB", "total MB"], ...r.rows.map((x) => [x.instances, x.last_ready_ms, x.qemu_rss_mb.join(" / "), x.rss_total_mb])]));
}
