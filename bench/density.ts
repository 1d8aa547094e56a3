// Instances side by side, for sizing a runner (the Kubernetes recipe, the README's sizing line):
// 1, 2, 4 and 8 idle 512M dinv instances started together, cold (booted) and warm (restored from
// one saved state); each QEMU's PSS (smaps_rollup: shared pages split between their users) and RSS,
// the totals, the ready time of the last. The DinD peer's idle footprint (dockerd and containerd,
// the same build as the guest's) in the same run.
// Twice: the launcher on this host's QEMU (7.2 here: a restore reads the state's stream into its own
// memory), and the image's containers (QEMU 10: every restore maps the state's one RAM file).
// share_ratio: total PSS of 4 warm image instances / (4 x the PSS of one cold one); 1.0 is nothing
// shared. share_ratio_stream: the same for the host's launcher, whose restores read the stream.
// Usage: node --import tsx bench/density.ts [--counts 1,2,4,8] [--json]   (root: the DinD peer needs dockerd)

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DINV, DinvProcess, freePort } from "../test/helpers/dinv-process.js";
import { TestDockerd } from "../test/helpers/test-dockerd.js";
import { importDindImage, PRIVILEGED } from "./warm.js";
import { table, untilPing } from "./lib.js";
import { footprint } from "./footprint.js";
import { imageDensity, type DensityRow } from "./density-image.js";

const SETTLE_MS = 15_000;
/** Every instance's guest RAM, MB: DINV_MEMORY's default. */
const GUEST_MB = 512;


const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** n instances started together; their idle footprint once the last answers and all settled. */
async function together(n: number, mode: "cold" | "warm", warmDir: string, log: (s: string) => void) {
  const env: Record<string, string> = mode === "warm" ? { DINV_WARM_DIR: warmDir } : { DINV_WARM_START: "off" };
  const all = await Promise.all(Array.from({ length: n }, () => DinvProcess.create(env)));
  const t0 = Date.now();
  for (const d of all) d.start();
  try {
    const ready = await Promise.all(all.map((d) => untilPing(Number(d.env.DINV_DOCKER_PORT), t0, 900_000)));
    const starts = all.map((d) => d.state()?.warm?.start ?? "cold");
    if (mode === "warm" && starts.some((s) => s !== "warm")) throw new Error(`not every instance restored: ${starts.join(", ")}`);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const each = all.map((d) => footprint(Number(readFileSync(join(d.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"))));
    const row = {
      mode,
      instances: n,
      last_ready_ms: Math.max(...ready),
      pss_mb: each.map((e) => e.pss),
      rss_mb: each.map((e) => e.rss),
      pss_total_mb: sum(each.map((e) => e.pss)),
      rss_total_mb: sum(each.map((e) => e.rss)),
    };
    log(JSON.stringify(row));
    return row;
  } finally {
    await Promise.all(all.map(async (d) => {
      await d.stop("SIGTERM").catch(() => undefined);
      await d.kill();
    }));
  }
}

/** The DinD peer at idle: the PSS and RSS of every process in its container (dockerd, containerd, its init), MB. */
async function dindIdle(log: (s: string) => void): Promise<{ pss_mb: number; rss_mb: number; processes: string[] }> {
  const engine = await TestDockerd.start();
  const image = "dinv-bench/dind:latest";
  const port = await freePort();
  const name = `dinv-bench-density-dind-${process.pid}`;
  try {
    importDindImage(engine, image);
    const start = (flags: string[]) => engine.docker(["run", "-d", ...flags, "--init", "--name", name, "-v", "/var/lib/docker", "-p", `127.0.0.1:${port}:2375`, image, "dockerd", "--host=tcp://0.0.0.0:2375", "--tls=false"]);
    let run = start(PRIVILEGED[0]!);
    if (run.code !== 0 && /apply caps/.test(run.stderr)) {
      engine.docker(["rm", "-f", name]);
      run = start(PRIVILEGED[1]!);
    }
    if (run.code !== 0) throw new Error(`docker run (DinD peer) failed: ${run.stderr}`);
    await untilPing(port, Date.now(), 120_000);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const top = engine.docker(["top", name, "-eo", "pid,comm"]).stdout.trim().split("\n").slice(1);
    const procs = top.map((l) => l.trim().split(/\s+/)).map(([pid, comm]) => ({ pid: Number(pid), comm: comm ?? "?" }));
    const fp = procs.map((p) => footprint(p.pid));
    const row = { pss_mb: sum(fp.map((f) => f.pss)), rss_mb: sum(fp.map((f) => f.rss)), processes: procs.map((p, i) => `${p.comm} ${fp[i]!.pss}`) };
    log(`DinD peer idle: ${JSON.stringify(row)}`);
    return row;
  } finally {
    engine.docker(["rm", "-f", "-v", name]);
    engine.docker(["image", "rm", "-f", image]);
    await engine.stop();
  }
}

export async function benchDensity(counts: number[], log: (s: string) => void) {
  const warmDir = join(mkdtempSync(join(tmpdir(), "dinv-bench-density-")), "warm");
  const saved = spawnSync(process.execPath, [DINV, "warm", "save"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_WARM_DIR: warmDir }, encoding: "utf8" });
  if (saved.status !== 0) throw new Error(`dinv warm save failed: ${saved.stderr.slice(-2000)}`);
  const rows: DensityRow[] = [];
  for (const mode of ["cold", "warm"] as const) for (const n of counts) rows.push(await together(n, mode, warmDir, log));
  const image = await imageDensity(counts, log);
  rows.push(...image.rows);
  const dind = await dindIdle(log);
  const ratio = (cold: string, warm: string) => {
    const one = rows.find((r) => r.mode === cold && r.instances === 1);
    const four = rows.find((r) => r.mode === warm && r.instances === 4);
    return one && four ? Number((four.pss_total_mb / (4 * one.pss_total_mb)).toFixed(3)) : undefined;
  };
  const one = rows.find((r) => r.mode === "cold" && r.instances === 1);
  return {
    rows,
    dind,
    share_ratio: ratio("image cold", "image warm (mapped)"),
    share_ratio_stream: ratio("cold", "warm"),
    // QEMU RSS at idle / guest RAM of one image instance restored alone with its RAM file mapped.
    idle_rss_ratio_mapped: ((m) => (m ? Number((m.rss_total_mb / GUEST_MB).toFixed(2)) : undefined))(rows.find((r) => r.mode === "image warm (mapped)" && r.instances === 1)),
    // QEMU start to state loaded in the image, mapped / the stream of the same state (median of 3 each).
    restore: image.restore,
    // What one more idle instance costs, against the DinD peer's idle dockerd and containerd.
    idle_vs_dind: one ? Number((one.pss_total_mb / dind.pss_mb).toFixed(2)) : undefined,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, counts: { type: "string", default: "1,2,4,8" } } });
  const counts = values.counts.split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const r = await benchDensity(counts, (s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(table([["start", "instances", "ready of the last, ms", "PSS each, MB", "PSS total, MB", "RSS total, MB"], ...r.rows.map((x) => [x.mode, x.instances, x.last_ready_ms, x.pss_mb.join(" / "), x.pss_total_mb, x.rss_total_mb])]));
    console.log(`DinD peer idle: PSS ${r.dind.pss_mb} MB, RSS ${r.dind.rss_mb} MB (${r.dind.processes.join(", ")})`);
    console.log(`restore, QEMU start to state loaded: mapped ${r.restore.mapped_ms.join("/")} ms, stream ${r.restore.stream_ms.join("/")} ms, restore_ratio ${r.restore.restore_ratio} (target 0.5); docker run --rm IMAGE true: mapped ${r.restore.mapped_run_ms.join("/")} ms, stream ${r.restore.stream_run_ms.join("/")} ms (${r.restore.run_ratio})`);
    console.log(`share_ratio ${r.share_ratio} (target 0.4; the stream's: ${r.share_ratio_stream}); one idle instance / the DinD peer's idle: ${r.idle_vs_dind}`);
  }
}
