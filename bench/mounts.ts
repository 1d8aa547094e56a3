// Bind-mount speed: the same workload on a DINV_MOUNTS share with the original DinV's 9p options
// (kernel defaults: no msize, no cache), dinv's tuned 9p and virtio-fs.
// All variants are booted first (one VM each, idle when not measured), then the passes take turns:
// pass 1 on every variant, pass 2 on every variant, … so a noisy minute on this shared machine hits
// all variants alike instead of deciding one variant's figure. Every figure is the median of the passes.
// A variant is "virtiofs" or a DINV_9P_OPTIONS value ("none" = the original's); "OPTIONS+none" adds
// DINV_9P_SECURITY=none (the cost of the default mapped-xattr model is that pair's ratio).
// Usage: node --import tsx bench/mounts.ts [--json] [--passes 3] [--variants "none|msize=512000,cache=mmap|virtiofs"]

import { readFileSync, mkdtempSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { docker, importBusybox } from "../test/helpers/docker-cli.js";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { median, table } from "./lib.js";

const WORKLOAD = readFileSync(new URL("./workloads/9p.sh", import.meta.url), "utf8");

/** "phase ms" lines, several passes, to the median per phase. Pure. */
export function medianPerPhase(stdout: string): Record<string, number> {
  const byPhase = new Map<string, number[]>();
  for (const line of stdout.trim().split("\n")) {
    const [phase, ms] = line.split(" ");
    if (!phase || ms === undefined || !Number.isFinite(Number(ms))) throw new Error(`unexpected workload line: ${JSON.stringify(line)}`);
    byPhase.set(phase, [...(byPhase.get(phase) ?? []), Number(ms)]);
  }
  return Object.fromEntries([...byPhase].map(([phase, values]) => [phase, median(values)]));
}

interface Booted {
  options: string;
  dinv: DinvProcess;
  output: string;
}

function exec(b: Booted, args: string[]): string {
  const run = docker(b.dinv.dockerHost, ["exec", "bench", "sh", "-c", WORKLOAD, "9p.sh", ...args], undefined, 900_000);
  if (run.code !== 0) throw new Error(`workload (${b.options}) ${args[0]} failed: ${run.stderr}`);
  return run.stdout;
}

export async function benchMounts(variants: string[], log: (s: string) => void, passes = 3) {
  const booted: Booted[] = [];
  try {
    for (const options of variants) {
      const share = mkdtempSync(join(tmpdir(), "dinv-bench-share-"));
      chmodSync(share, 0o777);
      // "OPTIONS+none": 9p with those options and DINV_9P_SECURITY=none (owners passed through, the original's).
      const [ninep, security] = options.split("+");
      const env: Record<string, string> = options === "virtiofs" ? { DINV_MOUNTS_FS: "virtiofs" } : { DINV_MOUNTS_FS: "9p", DINV_9P_OPTIONS: ninep!, ...(options === "none" || security === "none" ? { DINV_9P_SECURITY: "none" } : {}) };
      const dinv = await DinvProcess.create({ DINV_MOUNTS: share, ...env });
      const b: Booted = { options, dinv, output: "" };
      booted.push(b);
      dinv.start();
      const state = await dinv.waitUntilSettled();
      if (state.phase !== "ready") throw new Error(`not ready: ${dinv.tail()}`);
      importBusybox(dinv.dockerHost, "dinv-bench/tools");
      const run = docker(dinv.dockerHost, ["run", "-d", "--name", "bench", "--privileged", "-v", `${share}:/w`, "dinv-bench/tools", "sleep", "86400"]);
      if (run.code !== 0) throw new Error(`bench container (${options}): ${run.stderr}`);
      exec(b, ["setup"]);
    }
    for (let pass = 1; pass <= passes; pass++) {
      for (const b of booted) {
        const out = exec(b, ["pass", "/w"]);
        b.output += out;
        log(`pass ${pass} ${b.options}: ${out.trim().split("\n").join(", ")}`);
      }
    }
    return Object.fromEntries(booted.map((b) => [b.options, medianPerPhase(b.output)]));
  } finally {
    for (const b of booted) {
      await b.dinv.stop("SIGTERM").catch(() => undefined);
      await b.dinv.kill();
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      passes: { type: "string", default: "3" },
      variants: { type: "string", default: "none|msize=512000,cache=mmap|virtiofs" },
    },
  });
  const passes = Number(values.passes);
  if (!Number.isInteger(passes) || passes < 1) throw new Error(`--passes ${values.passes}: a whole number ≥ 1`);
  const variants = values.variants!.split("|");
  const r = await benchMounts(variants, (s) => console.error(s), passes);
  const base = r[variants[0]!]!;
  if (values.json) console.log(JSON.stringify(r));
  else {
    const phases = Object.keys(base);
    console.log(table([["transport / 9p options", ...phases.map((p) => `${p} ms`), "small-file speed-up"], ...variants.map((v) => [v, ...phases.map((p) => r[v]![p]!), (base.small_files_write! / r[v]!.small_files_write!).toFixed(2)])]));
  }
}
