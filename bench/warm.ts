// Warm start against cold boot and against a DinD peer, in one run.
// - warm_ratio: dinv's ready time restored from a saved state / booted cold, medians, same shape.
// - dind_ratio: the dinv image's warm ready time / a DinD peer's, both timed from `docker run` to
//   /_ping answering on the published port. The peer: the guest's own dockerd (the same Debian
//   packages, the guest's package tree `docker import`ed) in a --privileged container of the same
//   test engine, an init as PID 1 and dockerd its child, TLS off, /var/lib/docker a volume. The
//   image's cold figure against it too.
// Also: the save (time, the VM's pause), restore alone (QEMU start to the state loaded), the state's
// size raw and zstd -1, and the first `docker run` after a warm start vs after a cold one.
// Ready time for dinv: `dinv run` spawned to /_ping answering through its forward.
// Usage: node --import tsx bench/warm.ts [--runs N] [--json]   (root: the DinD peer needs dockerd)

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DINV, DinvProcess, freePort, REPO } from "../test/helpers/dinv-process.js";
import { docker, testRootTar } from "../test/helpers/docker-cli.js";
import { KVM_DEVICE, TestDockerd } from "../test/helpers/test-dockerd.js";
import { WarmMetaSchema } from "../host/warm/store.js";
import { median, table, untilPing } from "./lib.js";

const ratio = (a: number, b: number) => Number((a / b).toFixed(3));

/** First `docker run --rm IMAGE true` on a guest, ms. */
function firstRun(host: string): number {
  const t0 = Date.now();
  const r = docker(host, ["run", "--rm", "dinv-test/busybox", "true"]);
  if (r.code !== 0) throw new Error(`docker run failed: ${r.stderr}`);
  return Date.now() - t0;
}

async function dinvReady(env: Record<string, string>, tar: string, importImage: boolean) {
  const dinv = await DinvProcess.create(env);
  const t0 = Date.now();
  dinv.start();
  const ms = await untilPing(Number(dinv.env.DINV_DOCKER_PORT), t0);
  const state = dinv.state();
  if (importImage) {
    const r = docker(dinv.dockerHost, ["import", "--change", 'CMD ["/bin/sh"]', tar, "dinv-test/busybox:latest"]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const run = firstRun(dinv.dockerHost);
  await dinv.stop("SIGTERM");
  await dinv.kill();
  return { ms, run, start: state?.warm?.start, loadMs: state?.warm?.loadMs };
}

/** A dinv image on the test engine, warm (a state in the volume) or cold: docker run to /_ping, ms. */
export async function imageReady(engine: TestDockerd, warmVolume: string | undefined, image = "dinv:latest"): Promise<number> {
  const port = await freePort();
  const name = `dinv-bench-image-${process.pid}-${port}`;
  const t0 = Date.now();
  const run = engine.docker(["run", "-d", "--name", name, ...KVM_DEVICE, "-p", `127.0.0.1:${port}:2375`, ...(warmVolume ? ["-v", `${warmVolume}:/var/cache/dinv`] : []), image]);
  if (run.code !== 0) throw new Error(`docker run dinv failed: ${run.stderr}`);
  try {
    return await untilPing(port, t0, 300_000);
  } finally {
    engine.docker(["stop", "-t", "60", name]);
    engine.docker(["rm", "-f", "-v", name]);
  }
}

/**
 * How the DinD peer is made privileged: --privileged, or, where the machine itself lacks a capability
 * (runc then refuses --privileged: "unable to apply caps"), every capability it has with seccomp,
 * AppArmor and the masked system paths off (what --privileged adds besides devices).
 */
export const PRIVILEGED = [["--privileged"], ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined"]];
let privileged: string[] | undefined;

/** The DinD peer: the guest's dockerd in a privileged container; docker run to /_ping, ms. */
async function dindReady(engine: TestDockerd, image: string, log: (s: string) => void): Promise<number> {
  const port = await freePort();
  const name = `dinv-bench-dind-${process.pid}-${port}`;
  const start = (flags: string[]) => engine.docker(["run", "-d", "--rm", ...flags, "--init", "--name", name, "-v", "/var/lib/docker", "-p", `127.0.0.1:${port}:2375`, image, "dockerd", "--host=tcp://0.0.0.0:2375", "--tls=false"]);
  let t0 = Date.now();
  let run = start(privileged ?? PRIVILEGED[0]!);
  if (run.code !== 0 && !privileged && /apply caps/.test(run.stderr)) {
    engine.docker(["rm", "-f", name]);
    log("DinD peer: --privileged refused here (this machine lacks a capability); every other capability, seccomp/AppArmor/system paths unconfined");
    privileged = PRIVILEGED[1]!;
    t0 = Date.now();
    run = start(privileged);
  }
  privileged ??= PRIVILEGED[0]!;
  if (run.code !== 0) throw new Error(`docker run (DinD peer) failed: ${run.stderr}`);
  try {
    return await untilPing(port, t0, 120_000);
  } finally {
    engine.docker(["rm", "-f", "-v", name]);
  }
}

/** The DinD peer's image: the package tree the current guest was built from (the same dockerd), imported. */
export function importDindImage(engine: TestDockerd, name: string): void {
  const tree = readdirSync(join(REPO, "build/cache")).filter((f) => /^rootfs-.*\.tar$/.test(f)).sort((a, b) => statSync(join(REPO, "build/cache", b)).mtimeMs - statSync(join(REPO, "build/cache", a)).mtimeMs)[0];
  if (!tree) throw new Error("build/cache/rootfs-*.tar missing: npm run build");
  const imported = spawnSync("sh", ["-c", `docker import ${join(REPO, "build/cache", tree)} ${name}`], { env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8" });
  if (imported.status !== 0) throw new Error(`docker import of the guest's package tree failed: ${imported.stderr}`);
}

export async function benchWarm(runs: number, log: (s: string) => void) {
  const work = mkdtempSync(join(tmpdir(), "dinv-bench-warm-"));
  const tar = join(work, "root.tar");
  writeFileSync(tar, testRootTar());
  const warmDir = join(work, "warm");
  // The save, with the test image loaded first (as a CI image would bake its base images in).
  const t0 = Date.now();
  const saved = spawnSync(process.execPath, [DINV, "warm", "save", "--", "sh", "-c", `docker import --change 'CMD ["/bin/sh"]' ${tar} dinv-test/busybox:latest`], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_WARM_DIR: warmDir },
    encoding: "utf8",
  });
  if (saved.status !== 0) throw new Error(`dinv warm save failed: ${saved.stderr.slice(-2000)}`);
  const saveMs = Date.now() - t0;
  const dir = join(warmDir, readdirSync(warmDir).find((e) => !e.startsWith("."))!);
  const meta = WarmMetaSchema.parse(JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")));
  const zstd = spawnSync("sh", ["-c", `zstd -1 -T0 -c ${join(dir, "state.bin")} | wc -c`], { encoding: "utf8" });
  log(`saved in ${saveMs} ms (the VM paused ${meta.pauseMs} ms): state ${meta.state.bytes} bytes, zstd -1 ${zstd.stdout.trim()}`);

  const engine = await TestDockerd.start();
  const dindImage = "dinv-bench/dind:latest";
  try {
    importDindImage(engine, dindImage);
    // The image, as CI users run it: its QEMU, its launcher, a warm state in a volume.
    const built = spawnSync(process.execPath, ["scripts/image.mjs"], { cwd: REPO, env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8" });
    if (built.status !== 0) throw new Error(`npm run image failed: ${built.stderr.slice(-2000)}`);
    const volume = `dinv-bench-warm-${process.pid}`;
    const imageSave = engine.docker(["run", "--rm", ...KVM_DEVICE, "-v", `${volume}:/var/cache/dinv`, "--entrypoint", "dinv", "dinv:latest", "warm", "save"], { timeoutMs: 600_000 });
    if (imageSave.code !== 0) throw new Error(`dinv warm save in the image failed: ${imageSave.stderr.slice(-2000)}`);
    const imageWarm: number[] = [];
    const imageCold: number[] = [];
    const cold: Awaited<ReturnType<typeof dinvReady>>[] = [];
    const warm: Awaited<ReturnType<typeof dinvReady>>[] = [];
    const dind: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Interleaved, so drift on a shared machine hits each alike.
      warm.push(await dinvReady({ DINV_WARM_DIR: warmDir }, tar, false));
      if (warm.at(-1)!.start !== "warm") throw new Error(`run ${i + 1} did not start warm (${warm.at(-1)!.start})`);
      cold.push(await dinvReady({ DINV_WARM_START: "off" }, tar, true));
      dind.push(await dindReady(engine, dindImage, log));
      imageWarm.push(await imageReady(engine, volume));
      imageCold.push(await imageReady(engine, undefined));
      log(`run ${i + 1}/${runs}: warm ${warm.at(-1)!.ms} ms (restore ${warm.at(-1)!.loadMs} ms), cold ${cold.at(-1)!.ms} ms, DinD peer ${dind.at(-1)} ms, image warm ${imageWarm.at(-1)} / cold ${imageCold.at(-1)} ms; first docker run warm ${warm.at(-1)!.run} / cold ${cold.at(-1)!.run} ms`);
    }
    engine.docker(["volume", "rm", "-f", volume]);
    const warmMs = median(warm.map((w) => w.ms));
    const coldMs = median(cold.map((c) => c.ms));
    const dindMs = median(dind);
    const imageWarmMs = median(imageWarm);
    const imageColdMs = median(imageCold);
    return {
      warm_ms: warmMs,
      cold_ms: coldMs,
      warm_ratio: ratio(warmMs, coldMs),
      dind_ms: dindMs,
      image_warm_ms: imageWarmMs,
      image_cold_ms: imageColdMs,
      image_warm_ratio: ratio(imageWarmMs, imageColdMs),
      // Both timed from `docker run`: the dinv image restoring vs the DinD peer.
      dind_ratio: ratio(imageWarmMs, dindMs),
      dind_ratio_cold: ratio(imageColdMs, dindMs),
      dind_ratio_launcher: ratio(warmMs, dindMs),
      restore_ms: median(warm.map((w) => w.loadMs ?? 0)),
      first_run_warm_ms: median(warm.map((w) => w.run)),
      first_run_cold_ms: median(cold.map((c) => c.run)),
      save_ms: saveMs,
      save_pause_ms: meta.pauseMs,
      state_mb: Math.round(meta.state.bytes / 1e6),
      state_zstd_mb: Math.round(Number(zstd.stdout.trim()) / 1e6),
      disk_mb: Math.round(meta.disk.bytes / 1e6),
      state_bytes_on_disk_mb: Math.round((statSync(join(dir, "state.bin")).blocks * 512) / 1e6),
    };
  } finally {
    engine.docker(["image", "rm", "-f", dindImage]);
    await engine.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, json: { type: "boolean", default: false } } });
  const r = await benchWarm(Number(values.runs), (s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else
    console.log(table([
      ["figure", "value"],
      ["ready, warm start, ms (median)", r.warm_ms],
      ["ready, cold boot, ms (median)", r.cold_ms],
      ["warm_ratio (warm / cold)", r.warm_ratio],
      ["DinD peer, docker run to /_ping, ms (median)", r.dind_ms],
      ["dinv image, docker run to /_ping, warm / cold, ms", `${r.image_warm_ms} / ${r.image_cold_ms}`],
      ["dind_ratio (image warm / DinD), image cold / DinD", `${r.dind_ratio}, ${r.dind_ratio_cold}`],
      ["restore alone (QEMU start to state loaded), ms", r.restore_ms],
      ["first docker run, warm / cold, ms", `${r.first_run_warm_ms} / ${r.first_run_cold_ms}`],
      ["save: dinv warm save, ms (VM paused, ms)", `${r.save_ms} (${r.save_pause_ms})`],
      ["state, MB raw / zstd -1; docker disk, MB", `${r.state_mb} / ${r.state_zstd_mb}; ${r.disk_mb}`],
    ]));
}
