// Instances side by side as users run them: containers of the dinv image (its QEMU maps a warm
// state's RAM file, 8.2 and later), cold and warm from one `dinv warm save` into a volume the
// instances mount read-only. Each QEMU's PSS and RSS, found by its process name in the container.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { freePort, REPO } from "../test/helpers/dinv-process.js";
import { TestDockerd } from "../test/helpers/test-dockerd.js";
import { untilPing } from "./lib.js";
import { footprint } from "./footprint.js";

const IMAGE = "dinv:latest";
const SETTLE_MS = 15_000;
const KVM = existsSync("/dev/kvm") ? ["--device", "/dev/kvm"] : [];
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export interface DensityRow {
  mode: string;
  instances: number;
  last_ready_ms: number;
  pss_mb: number[];
  rss_mb: number[];
  pss_total_mb: number;
  rss_total_mb: number;
}

/** The host pid of the QEMU in a container (its process name is dinv-qemu). */
function qemuPid(engine: TestDockerd, name: string): number {
  const top = engine.docker(["top", name, "-eo", "pid,args"]).stdout.split("\n");
  const line = top.find((l) => /process=dinv-qemu|\bqemu-system/.test(l));
  if (!line) throw new Error(`no QEMU in ${name}: ${top.join(" | ").slice(0, 500)}`);
  return Number(line.trim().split(/\s+/)[0]);
}

async function together(engine: TestDockerd, n: number, mode: "cold" | "warm", volume: string, log: (s: string) => void): Promise<DensityRow> {
  const names = Array.from({ length: n }, (_, i) => `dinv-density-${process.pid}-${mode}-${i}`);
  const ports = await Promise.all(names.map(() => freePort()));
  const flags = mode === "warm" ? ["-v", `${volume}:/var/cache/dinv:ro`] : ["-e", "DINV_WARM_START=off"];
  const t0 = Date.now();
  try {
    names.forEach((name, i) => {
      const run = engine.docker(["run", "-d", "--name", name, ...KVM, ...flags, "-p", `127.0.0.1:${ports[i]}:2375`, IMAGE]);
      if (run.code !== 0) throw new Error(`docker run ${name}: ${run.stderr}`);
    });
    const ready = await Promise.all(ports.map((p) => untilPing(p, t0, 900_000)));
    if (mode === "warm") {
      for (const name of names) if (!/RAM file mapped/.test(engine.docker(["logs", name]).stderr)) throw new Error(`${name} did not map the state's RAM file`);
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const each = names.map((name) => footprint(qemuPid(engine, name)));
    const row = { mode: `image ${mode === "warm" ? "warm (mapped)" : "cold"}`, instances: n, last_ready_ms: Math.max(...ready), pss_mb: each.map((e) => e.pss), rss_mb: each.map((e) => e.rss), pss_total_mb: sum(each.map((e) => e.pss)), rss_total_mb: sum(each.map((e) => e.rss)) };
    log(JSON.stringify(row));
    return row;
  } finally {
    for (const name of names) engine.docker(["rm", "-f", name]);
  }
}

/**
 * Restore time alone (QEMU start to state loaded, the launcher's figure), the same state mapped and
 * read as a stream: a copy of the volume is another inode, so its restores read the stream.
 */
export async function restoreTimes(engine: TestDockerd, volume: string, runs: number, log: (s: string) => void) {
  const copy = `${volume}-copy`;
  engine.docker(["run", "--rm", "-v", `${volume}:/a:ro`, "-v", `${copy}:/b`, "--entrypoint", "cp", IMAGE, "-a", "/a/.", "/b/"]);
  // The launcher's figure, and the whole `docker run --rm IMAGE true` (start, restore, renewal, CMD, stop).
  const restore = (vol: string, how: string, into: { load: number[]; run: number[] }) => {
    const t0 = Date.now();
    const out = engine.docker(["run", "--rm", ...KVM, "-v", `${vol}:/var/cache/dinv:ro`, IMAGE, "true"], { timeoutMs: 600_000 }).stderr;
    into.run.push(Date.now() - t0);
    const ms = new RegExp(`loaded (\\d+) ms after QEMU started \\(${how}\\)`).exec(out)?.[1];
    if (!ms) throw new Error(`no ${how} restore: ${out.slice(-1500)}`);
    into.load.push(Number(ms));
  };
  const mapped = { load: [] as number[], run: [] as number[] };
  const stream = { load: [] as number[], run: [] as number[] };
  try {
    for (let i = 0; i < runs; i++) {
      restore(volume, "RAM file mapped", mapped);
      restore(copy, "stream read", stream);
    }
  } finally {
    engine.docker(["volume", "rm", "-f", copy]);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const r = {
    mapped_ms: mapped.load,
    stream_ms: stream.load,
    restore_ratio: Number((med(mapped.load) / med(stream.load)).toFixed(3)),
    mapped_run_ms: mapped.run,
    stream_run_ms: stream.run,
    run_ratio: Number((med(mapped.run) / med(stream.run)).toFixed(3)),
  };
  log(JSON.stringify(r));
  return r;
}

/** Cold and warm rows for each count, and the restore times, from the image built in this run. */
export async function imageDensity(counts: number[], log: (s: string) => void): Promise<{ rows: DensityRow[]; restore: Awaited<ReturnType<typeof restoreTimes>> }> {
  const engine = await TestDockerd.start();
  const volume = `dinv-density-warm-${process.pid}`;
  try {
    const built = spawnSync(process.execPath, ["scripts/image.mjs"], { cwd: REPO, env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8" });
    if (built.status !== 0) throw new Error(`scripts/image.mjs failed: ${built.stderr.slice(-2000)}`);
    const saved = engine.docker(["run", "--rm", ...KVM, "-v", `${volume}:/var/cache/dinv`, "--entrypoint", "dinv", IMAGE, "warm", "save"], { timeoutMs: 900_000 });
    if (saved.code !== 0 || !/restores map its RAM file/.test(saved.stderr)) throw new Error(`dinv warm save did not write a template: ${saved.stderr.slice(-2000)}`);
    const restore = await restoreTimes(engine, volume, 3, log);
    const rows: DensityRow[] = [];
    for (const mode of ["cold", "warm"] as const) for (const n of counts) rows.push(await together(engine, n, mode, volume, log));
    return { rows, restore };
  } finally {
    engine.docker(["volume", "rm", "-f", volume]);
    await engine.stop();
  }
}
