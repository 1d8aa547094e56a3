// docker pull and docker push of a ~100 MiB image against a real registry (Debian's
// docker-registry on this machine's loopback; the guest reaches it as 10.0.2.2), MiB/s, for dinv
// over SLIRP and over passt, against this machine's own dockerd pulling and pushing the same image
// from the same registry in the same run (pull_ratio, push_ratio: dinv / this machine; higher is
// better, 1 is native speed). Root only (it starts its own dockerd).
// Usage: node --import tsx bench/registry.ts [--json]

import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { clientDocker } from "../test/helpers/clients.js";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { TestDockerd } from "../test/helpers/test-dockerd.js";
import { TestRegistry } from "../test/helpers/registry.js";
import { table } from "./lib.js";

/** Size of the image's incompressible layer, MiB. */
const LAYER_MIB = 100;

type Docker = (args: string[], input?: Buffer) => { code: number; stdout: string; stderr: string };

function timed(docker: Docker, args: string[]): number {
  const t0 = performance.now();
  const r = docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr.slice(-500)}`);
  return performance.now() - t0;
}

/**
 * Pull `from` (not present locally: a cold pull), then push it to `to` on a registry of its own that
 * holds none of its layers (else the push only says "layer already exists"): MiB/s of each.
 */
function pullPush(docker: Docker, from: string, to: string): { pull_mib_s: number; push_mib_s: number } {
  const present = docker(["image", "inspect", "--format", "{{.Id}}", from]);
  if (present.code === 0) throw new Error(`${from} is already present: the pull would not transfer anything`);
  const pullMs = timed(docker, ["pull", "-q", from]);
  timed(docker, ["tag", from, to]);
  const pushMs = timed(docker, ["push", "-q", to]);
  const rate = (ms: number) => Number((LAYER_MIB / (ms / 1000)).toFixed(1));
  return { pull_mib_s: rate(pullMs), push_mib_s: rate(pushMs) };
}

export async function benchRegistry(log: (s: string) => void) {
  const registry = await TestRegistry.start();
  const targets: TestRegistry[] = [];
  const engine = await TestDockerd.start();
  try {
    // The image: one layer of random bytes (gzip cannot shrink it).
    const local: Docker = (args, input) => engine.docker(args, input ? { input } : {});
    const blob = randomBytes(LAYER_MIB * 2 ** 20);
    const tar = tarOf("payload.bin", blob);
    if (local(["import", "-", "dinv-bench/payload-layer"], tar).code !== 0) throw new Error("import failed");
    const source = `${registry.local}/dinv-bench/image:1`;
    const imported = local(["image", "inspect", "--format", "{{.Id}}", "dinv-bench/payload-layer"]).stdout.trim();
    timed(local, ["tag", "dinv-bench/payload-layer", source]);
    timed(local, ["push", "-q", source]);
    // Every name of the image goes, so the pull below fetches and unpacks it again.
    timed(local, ["image", "rm", "-f", imported]);
    // This machine's own dockerd: 127.0.0.0/8 registries are plain HTTP by default.
    const nativeTarget = await TestRegistry.start();
    targets.push(nativeTarget);
    const native = pullPush(local, source, `${nativeTarget.local}/dinv-bench/native:1`);
    log(`this machine's dockerd: ${JSON.stringify(native)}`);
    const viaDinv = async (net: "slirp" | "passt") => {
      const target = await TestRegistry.start();
      targets.push(target);
      const dinv = await DinvProcess.create({ DINV_NET: net, DINV_INSECURE_REGISTRIES: `${registry.fromGuest};${target.fromGuest}` });
      dinv.start();
      try {
        const state = await dinv.waitUntilSettled();
        if (state.phase !== "ready") throw new Error(dinv.tail());
        if (net === "passt" && !dinv.logs.some((l) => l.msg.includes("use passt"))) return undefined;
        const docker: Docker = (args, input) => clientDocker(dinv.dockerHost, args, input ? { input } : {});
        try {
          const r = pullPush(docker, `${registry.fromGuest}/dinv-bench/image:1`, `${target.fromGuest}/dinv-bench/${net}:1`);
          log(`dinv over ${net}: ${JSON.stringify(r)}`);
          return r;
        } catch (err) {
          // A failed transfer is a result too: reported, not a crash of the whole run.
          log(`dinv over ${net}: failed: ${(err as Error).message.slice(0, 300)}`);
          return { pull_mib_s: NaN, push_mib_s: NaN, error: (err as Error).message.slice(0, 300) };
        }
      } finally {
        await dinv.stop("SIGTERM").catch(() => undefined);
        await dinv.kill();
      }
    };
    const slirp = await viaDinv("slirp");
    const passt = await viaDinv("passt");
    const ratio = (x: number | undefined, base: number) => (x === undefined || Number.isNaN(x) ? null : Number((x / base).toFixed(3)));
    return {
      layer_mib: LAYER_MIB,
      native,
      slirp,
      passt: passt ?? null,
      pull_ratio: ratio(slirp?.pull_mib_s, native.pull_mib_s),
      push_ratio: ratio(slirp?.push_mib_s, native.push_mib_s),
      pull_ratio_passt: ratio(passt?.pull_mib_s, native.pull_mib_s),
      push_ratio_passt: ratio(passt?.push_mib_s, native.push_mib_s),
    };
  } finally {
    await engine.stop();
    registry.stop();
    for (const t of targets) t.stop();
  }
}

/** A one-file tar archive (ustar), for `docker import`. */
export function tarOf(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, "utf8");
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, "0")}\0`, 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, pad, Buffer.alloc(1024)]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
  const r = await benchRegistry((s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(table([
      ["", "pull MiB/s", "push MiB/s"],
      ["this machine's dockerd (baseline)", r.native.pull_mib_s, r.native.push_mib_s],
      ["dinv, SLIRP", r.slirp?.pull_mib_s ?? "-", r.slirp?.push_mib_s ?? "-"],
      ["dinv, passt", r.passt?.pull_mib_s ?? "did not run", r.passt?.push_mib_s ?? "-"],
    ]));
    console.log(`pull_ratio ${r.pull_ratio}, push_ratio ${r.push_ratio} (SLIRP); passt ${r.pull_ratio_passt}, ${r.push_ratio_passt}`);
  }
}
