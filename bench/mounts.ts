// Bind-mount speed: the same workload on a DINV_MOUNTS share with the original DinV's 9p options
// (kernel defaults: no msize, no cache), dinv's tuned 9p and virtio-fs, booted in the same run.
// A variant is "virtiofs" or a DINV_9P_OPTIONS value ("none" = the original's).
// Usage: node --import tsx bench/mounts.ts [--json] [--variants "none|msize=512000,cache=mmap|virtiofs"]

import { readFileSync, mkdtempSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { docker, importBusybox } from "../test/helpers/docker-cli.js";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { table } from "./lib.js";

const WORKLOAD = readFileSync(new URL("./workloads/9p.sh", import.meta.url), "utf8");

export async function benchMounts(variants: string[], log: (s: string) => void) {
  const results: Record<string, Record<string, number>> = {};
  for (const options of variants) {
    const share = mkdtempSync(join(tmpdir(), "dinv-bench-share-"));
    chmodSync(share, 0o777);
    const env: Record<string, string> = options === "virtiofs" ? { DINV_MOUNTS_FS: "virtiofs" } : { DINV_MOUNTS_FS: "9p", DINV_9P_OPTIONS: options };
    const dinv = await DinvProcess.create({ DINV_MOUNTS: share, ...env });
    dinv.start();
    try {
      const state = await dinv.waitUntilSettled();
      if (state.phase !== "ready") throw new Error(`not ready: ${dinv.tail()}`);
      importBusybox(dinv.dockerHost, "dinv-bench/tools");
      const run = docker(dinv.dockerHost, ["run", "--rm", "--privileged", "-v", `${share}:/w`, "dinv-bench/tools", "sh", "-c", WORKLOAD, "9p.sh", "/w"], undefined, 900_000);
      if (run.code !== 0) throw new Error(`workload failed: ${run.stderr}`);
      results[options] = Object.fromEntries(run.stdout.trim().split("\n").map((l) => l.split(" ")).map(([k, v]) => [k!, Number(v)]));
      log(`${options}: ${JSON.stringify(results[options])}`);
    } finally {
      await dinv.stop("SIGTERM").catch(() => undefined);
      await dinv.kill();
    }
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, variants: { type: "string", default: "none|msize=512000,cache=mmap|virtiofs" } } });
  const variants = values.variants!.split("|");
  const r = await benchMounts(variants, (s) => console.error(s));
  const base = r[variants[0]!]!;
  if (values.json) console.log(JSON.stringify(r));
  else {
    const phases = Object.keys(base);
    console.log(table([["transport / 9p options", ...phases.map((p) => `${p} ms`), "small-file speed-up"], ...variants.map((v) => [v, ...phases.map((p) => r[v]![p]!), (base.small_files_write! / r[v]!.small_files_write!).toFixed(2)])]));
  }
}
