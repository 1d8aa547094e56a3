// Boot phases of dinv from the agent's own timestamps, medians over several boots.
// Usage: node --import tsx bench/boot-phases.ts [--runs N] [--cpus 1,2] [--json]
// Each boot uses a fresh docker disk except where --reuse is given (then the first boot formats).
// --warm adds warm starts (a state saved once by `dinv warm save`, then restored --runs times).
// --svg FILE draws the medians as a timeline (docs/boot-timeline.svg is made so, with --warm).

import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DINV, DinvProcess } from "../test/helpers/dinv-process.js";
import { timelineSvg } from "./timeline-svg.js";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "5" }, cpus: { type: "string", default: "1,2" }, json: { type: "boolean", default: false }, reuse: { type: "boolean", default: false }, warm: { type: "boolean", default: false }, svg: { type: "string" } },
});
const runs = Number(values.runs);
const keys = ["kernel", "init", "hello", "disksMounted", "dockerdStarted", "ready"] as const;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};

const results: Record<string, Record<string, number>> = {};
for (const cpus of values.cpus!.split(",")) {
  const samples: Record<string, number[]> = Object.fromEntries(keys.map((k) => [k, []]));
  let shared: DinvProcess | undefined;
  for (let i = 0; i < runs; i++) {
    const dinv = values.reuse && shared ? shared : await DinvProcess.create({ DINV_CPUS: cpus });
    shared = dinv;
    dinv.start();
    try {
      const state = await dinv.waitUntilSettled();
      const timeline = state.timeline ?? {};
      for (const k of keys) if (typeof timeline[k] === "number") samples[k]!.push(timeline[k]!);
      if (!values.json) console.error(`cpus=${cpus} run ${i + 1}/${runs}: ${JSON.stringify(timeline)}`);
    } finally {
      await dinv.stop("SIGTERM").catch(() => undefined);
      await dinv.kill();
    }
  }
  results[`cpus=${cpus}`] = Object.fromEntries(keys.map((k) => [k, median(samples[k]!)]));
}

if (values.warm) {
  const warmDir = mkdtempSync(join(tmpdir(), "dinv-phases-warm-"));
  const saved = spawnSync(process.execPath, [DINV, "warm", "save"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_WARM_DIR: warmDir }, encoding: "utf8" });
  if (saved.status !== 0) throw new Error(`dinv warm save failed: ${saved.stderr.slice(-2000)}`);
  const warmKeys = ["restored", "hello", "ready"];
  const samples: Record<string, number[]> = Object.fromEntries(warmKeys.map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    const dinv = await DinvProcess.create({ DINV_WARM_DIR: warmDir });
    dinv.start();
    try {
      const state = await dinv.waitUntilSettled();
      if (state.warm?.start !== "warm") throw new Error(`not a warm start: ${JSON.stringify(state.warm)}`);
      for (const k of warmKeys) if (typeof state.timeline?.[k] === "number") samples[k]!.push(state.timeline[k]!);
      if (!values.json) console.error(`warm run ${i + 1}/${runs}: ${JSON.stringify(state.timeline)}`);
    } finally {
      await dinv.stop("SIGTERM").catch(() => undefined);
      await dinv.kill();
    }
  }
  results["warm, cpus=1"] = Object.fromEntries(warmKeys.map((k) => [k, median(samples[k]!)]));
}

if (values.svg) {
  const rows = Object.entries(results).map(([name, phases]) => ({ label: name.startsWith("warm") ? "warm start, 1 vCPU" : `cold boot, ${name.replace("cpus=", "")} vCPU`, phases }));
  writeFileSync(values.svg, timelineSvg(rows, `dinv boot phases under TCG, median of ${runs} each (${new Date().toISOString().slice(0, 10)}, bench/boot-phases.ts${values.warm ? " --warm" : ""})`));
}
if (values.json) {
  console.log(JSON.stringify(results));
} else {
  console.log(`\nmedian ms since QEMU start (${runs} boots each)`);
  console.log(["", ...keys].map((k) => k.padStart(15)).join(""));
  for (const [name, row] of Object.entries(results)) console.log([name, ...keys.map((k) => String(row[k] ?? "-"))].map((v) => v.padStart(15)).join(""));
  if (results["warm, cpus=1"]) console.log(`warm start: ${JSON.stringify(results["warm, cpus=1"])}`);
}
