// Ready time of the same launcher with different guest builds, boots interleaved so a noisy minute
// hits every variant alike: e.g. the root image as ext4 against erofs, or a guest directory holding
// only the compressed kernel (the image's shape: the launcher extracts vmlinux at start).
// Usage: node --import tsx bench/guest-variants.ts --variants ext4=/tmp/guest-ext4,erofs=build/guest [--runs 5] [--json]
// The first variant is the baseline of the ratios.

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { median, table, untilPing } from "./lib.js";

export async function benchGuestVariants(variants: [string, string][], runs: number, log: (s: string) => void) {
  const ms: Record<string, number[]> = Object.fromEntries(variants.map(([name]) => [name, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, dir] of variants) {
      const dinv = await DinvProcess.create({ DINV_GUEST_DIR: resolve(dir) });
      const t0 = Date.now();
      dinv.start();
      try {
        ms[name]!.push(await untilPing(Number(dinv.env.DINV_DOCKER_PORT), t0));
      } finally {
        await dinv.stop("SIGTERM").catch(() => undefined);
        await dinv.kill();
      }
      log(`run ${i + 1}/${runs} ${name}: ${ms[name]!.at(-1)} ms`);
    }
  }
  const base = median(ms[variants[0]![0]]!);
  return variants.map(([name]) => ({ variant: name, ready_ms: median(ms[name]!), ratio: Number((median(ms[name]!) / base).toFixed(3)), runs_ms: ms[name]! }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { variants: { type: "string" }, runs: { type: "string", default: "5" }, json: { type: "boolean", default: false } } });
  if (!values.variants) throw new Error("--variants name=dir,name=dir is required");
  const variants = values.variants.split(",").map((v) => v.split("=") as [string, string]);
  const r = await benchGuestVariants(variants, Number(values.runs), (s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else console.log(table([["variant", "ready, median ms", `ratio to ${variants[0]![0]}`], ...r.map((x) => [x.variant, x.ready_ms, x.ratio])]));
}
