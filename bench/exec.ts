// Process start-up in the guest, which every `docker run` and every build step pays: dinv's
// default under TCG (guest address-space randomisation off, DINV_GUEST_ASLR=auto) against the
// kernel's default (DINV_GUEST_ASLR=on), two VMs booted side by side, passes interleaved.
// Figures: `docker run --rm … true` as the docker CLI sees it, and 100 execs of a dynamically
// linked binary (coreutils' env) inside a running container.
// Usage: node --import tsx bench/exec.ts [--json] [--passes 5]

import { parseArgs } from "node:util";
import { docker, importBusybox } from "../test/helpers/docker-cli.js";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { median, table } from "./lib.js";

const IMAGE = "dinv-bench/exec";
// Guest time from /proc/uptime (10 ms resolution), so the docker exec around it does not count.
const EXECS = 'read -r a _ < /proc/uptime; i=0; while [ $i -lt 100 ]; do /usr/bin/env > /dev/null; i=$((i+1)); done; read -r b _ < /proc/uptime; echo "$a $b"';

interface Arm {
  label: string;
  dinv: DinvProcess;
  runMs: number[];
  execMs: number[];
}

function onePass(arm: Arm): void {
  const t0 = Date.now();
  const run = docker(arm.dinv.dockerHost, ["run", "--rm", IMAGE, "true"]);
  if (run.code !== 0) throw new Error(`docker run (${arm.label}): ${run.stderr}`);
  arm.runMs.push(Date.now() - t0);
  const loop = docker(arm.dinv.dockerHost, ["exec", "bench", "sh", "-c", EXECS]);
  const [a, b] = loop.stdout.trim().split(" ").map(Number);
  if (loop.code !== 0 || !Number.isFinite(a) || !Number.isFinite(b)) throw new Error(`exec loop (${arm.label}): ${loop.stderr}${loop.stdout}`);
  arm.execMs.push(Math.round((b! - a!) * 1000));
}

export async function benchExec(log: (s: string) => void, passes = 5) {
  const arms: Arm[] = [];
  try {
    for (const [label, env] of [["dinv (ASLR off under TCG)", {}], ["DINV_GUEST_ASLR=on", { DINV_GUEST_ASLR: "on" }]] as const) {
      const dinv = await DinvProcess.create(env);
      arms.push({ label, dinv, runMs: [], execMs: [] });
      dinv.start();
      const state = await dinv.waitUntilSettled();
      if (state.phase !== "ready") throw new Error(`not ready: ${dinv.tail()}`);
      importBusybox(dinv.dockerHost, IMAGE, ["/usr/bin/env"]);
      const up = docker(dinv.dockerHost, ["run", "-d", "--name", "bench", IMAGE, "sleep", "86400"]);
      if (up.code !== 0) throw new Error(`bench container (${label}): ${up.stderr}`);
    }
    for (let pass = 1; pass <= passes; pass++) {
      for (const arm of arms) {
        onePass(arm);
        log(`pass ${pass} ${arm.label}: docker run ${arm.runMs.at(-1)} ms, 100 execs ${arm.execMs.at(-1)} ms`);
      }
    }
    const [dinv, aslr] = arms.map((a) => ({ docker_run_ms: median(a.runMs), execs_100_ms: median(a.execMs) }));
    return {
      dinv: dinv!,
      aslr_on: aslr!,
      // how many times faster dinv's default is (higher is better)
      docker_run_speedup: Number((aslr!.docker_run_ms / dinv!.docker_run_ms).toFixed(2)),
      exec_speedup: Number((aslr!.execs_100_ms / dinv!.execs_100_ms).toFixed(2)),
    };
  } finally {
    for (const arm of arms) {
      await arm.dinv.stop("SIGTERM").catch(() => undefined);
      await arm.dinv.kill();
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, passes: { type: "string", default: "5" } } });
  const passes = Number(values.passes);
  if (!Number.isInteger(passes) || passes < 1) throw new Error(`--passes ${values.passes}: a whole number ≥ 1`);
  const r = await benchExec((s) => console.error(s), passes);
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(table([
      ["median of passes", "dinv (ASLR off)", "DINV_GUEST_ASLR=on", "speed-up"],
      ["docker run --rm true, ms", r.dinv.docker_run_ms, r.aslr_on.docker_run_ms, r.docker_run_speedup],
      ["100 execs of a dynamic binary, ms", r.dinv.execs_100_ms, r.aslr_on.execs_100_ms, r.exec_speedup],
    ]));
  }
}
