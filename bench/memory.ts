// Memory at idle-ready: QEMU's RSS on the launcher side and the guest's used memory, for 512M and
// 2G guests. The ratio is QEMU RSS over guest RAM (1.0 would be a VM costing exactly its RAM).
// reclaim_ratio: a container in a 2G guest fills and frees 1000 MB; (QEMU RSS 10 s later - idle) /
// (peak - idle): 0 is every freed page given back, 1 none (free page reporting, virtio-balloon).
// Usage: node --import tsx bench/memory.ts [--json]

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { docker, importBusybox } from "../test/helpers/docker-cli.js";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { table } from "./lib.js";

export async function benchMemory(sizes: string[], log: (s: string) => void) {
  const rows: { memory: string; qemu_rss_mb: number; guest_used_mb: number; rss_per_guest_ram: number }[] = [];
  for (const memory of sizes) {
    const dinv = await DinvProcess.create({ DINV_MEMORY: memory });
    dinv.start();
    try {
      const state = await dinv.waitUntilSettled();
      if (state.phase !== "ready") throw new Error(dinv.tail());
      importBusybox(dinv.dockerHost, "dinv-bench/tools");
      await new Promise((r) => setTimeout(r, 10_000)); // settle to idle
      const meminfo = docker(dinv.dockerHost, ["run", "--rm", "dinv-bench/tools", "cat", "/proc/meminfo"]).stdout;
      const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(meminfo)?.[1]);
      const pid = Number(readFileSync(join(dinv.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
      const rssKib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
      const row = {
        memory,
        qemu_rss_mb: Math.round(rssKib / 1024),
        guest_used_mb: Math.round((kib("MemTotal") - kib("MemAvailable")) / 1024),
        rss_per_guest_ram: Number((rssKib / (state.vm.memoryBytes / 1024)).toFixed(2)),
      };
      rows.push(row);
      log(JSON.stringify(row));
    } finally {
      await dinv.stop("SIGTERM").catch(() => undefined);
      await dinv.kill();
    }
  }
  return rows;
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A 2G guest: idle RSS, the peak while a container holds 1000 MB of tmpfs, and the RSS 10 s after it exits. */
export async function benchReclaim(log: (s: string) => void) {
  const dinv = await DinvProcess.create({ DINV_MEMORY: "2G" });
  dinv.start();
  try {
    const state = await dinv.waitUntilSettled();
    if (state.phase !== "ready") throw new Error(dinv.tail());
    importBusybox(dinv.dockerHost, "dinv-bench/tools");
    const pid = Number(readFileSync(join(dinv.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
    await sleep(10_000);
    const idle = rssMb(pid);
    const id = docker(dinv.dockerHost, ["run", "-d", "--tmpfs", "/t:size=1100m", "dinv-bench/tools", "sh", "-c", "dd if=/dev/zero of=/t/f bs=1M count=1000 2>/dev/null; sleep 600"]).stdout.trim();
    let peak = idle;
    for (let i = 0; i < 120 && peak < idle + 950; i++) {
      await sleep(1000);
      peak = Math.max(peak, rssMb(pid));
    }
    docker(dinv.dockerHost, ["rm", "-f", id]);
    await sleep(10_000);
    const after = rssMb(pid);
    const r = { idle_mb: Math.round(idle), peak_mb: Math.round(peak), after_10s_mb: Math.round(after), reclaim_ratio: Number(((after - idle) / (peak - idle)).toFixed(3)) };
    log(JSON.stringify(r));
    return r;
  } finally {
    await dinv.stop("SIGTERM").catch(() => undefined);
    await dinv.kill();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
  const rows = await benchMemory(["512M", "2G"], (s) => console.error(s));
  const reclaim = await benchReclaim((s) => console.error(s));
  if (values.json) console.log(JSON.stringify({ rows, reclaim }));
  else console.log(table([["guest RAM", "QEMU RSS MB", "guest used MB", "RSS / guest RAM"], ...rows.map((r) => [r.memory, r.qemu_rss_mb, r.guest_used_mb, r.rss_per_guest_ram])]));
}
