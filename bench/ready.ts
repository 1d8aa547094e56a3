// Ready time: process start to dockerd answering /_ping through the forward. dinv (`dinv run`)
// against a naive baseline booted in the same run: the same kernel and root image with a plain
// shell init that mounts the disk and starts dockerd (the shape of the original DinV, which
// leaves the kernel's address-space randomisation on). A third arm, dinv with
// DINV_GUEST_ASLR=on, shows how much of the gain under TCG comes from turning it off.
// Usage: node --import tsx bench/ready.ts [--runs N] [--json]

import { parseArgs } from "node:util";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { bareQemu, median, table, untilPing } from "./lib.js";

export async function benchReady(runs: number, log: (s: string) => void) {
  const dinvMs: number[] = [];
  const aslrMs: number[] = [];
  const baseMs: number[] = [];
  const phases: Record<string, number[]> = {};
  const dockerdMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Alternate, so drift on a shared machine hits both alike.
    {
      const b = await bareQemu({ DINV_GUEST_ASLR: "on" }, ["dinv.init=baseline"]);
      baseMs.push(await untilPing(b.port, b.qemu.startedAt));
      b.qemu.kill("SIGKILL");
      await b.qemu.exited;
    }
    {
      const dinv = await DinvProcess.create();
      const t0 = Date.now();
      dinv.start();
      dinvMs.push(await untilPing(Number(dinv.env.DINV_DOCKER_PORT), t0));
      const state = dinv.state();
      for (const [k, v] of Object.entries(state?.timeline ?? {})) (phases[k] ??= []).push(v);
      const t = state?.timeline;
      // dockerd's own start: from its exec to /_ping answering in the guest.
      if (t?.ready !== undefined && t.dockerdStarted !== undefined) dockerdMs.push(t.ready - t.dockerdStarted);
      log(`dinv phases (ms since QEMU start): ${JSON.stringify(state?.timeline ?? {})}`);
      await dinv.stop("SIGTERM");
      await dinv.kill();
    }
    {
      const dinv = await DinvProcess.create({ DINV_GUEST_ASLR: "on" });
      const t0 = Date.now();
      dinv.start();
      aslrMs.push(await untilPing(Number(dinv.env.DINV_DOCKER_PORT), t0));
      await dinv.stop("SIGTERM");
      await dinv.kill();
    }
    log(`run ${i + 1}/${runs}: baseline ${baseMs.at(-1)} ms, dinv ${dinvMs.at(-1)} ms, dinv with guest ASLR ${aslrMs.at(-1)} ms`);
  }
  const result = {
    baseline_ms: median(baseMs),
    dinv_ms: median(dinvMs),
    ready_ratio: Number((median(dinvMs) / median(baseMs)).toFixed(3)),
    dinv_aslr_ms: median(aslrMs),
    ready_ratio_aslr: Number((median(aslrMs) / median(baseMs)).toFixed(3)),
    dockerd_start_ms: dockerdMs.length ? median(dockerdMs) : null,
    dinv_phases_ms: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])),
  };
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, json: { type: "boolean", default: false } } });
  const r = await benchReady(Number(values.runs), (s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(table([["", "median ms", "ratio"], ["baseline (shell init)", r.baseline_ms, "1.000"], ["dinv", r.dinv_ms, r.ready_ratio.toFixed(3)], ["dinv, DINV_GUEST_ASLR=on", r.dinv_aslr_ms, r.ready_ratio_aslr.toFixed(3)]]));
    console.log(`dinv phases (ms since QEMU start): ${JSON.stringify(r.dinv_phases_ms)}`);
  }
}
