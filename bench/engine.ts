// The guest's Docker stack, one build against another in the same run (e.g. before and after an
// engine upgrade): the same launcher boots each guest directory, interleaved, so a noisy minute
// hits both alike. Per guest: cold ready time (`dinv run` spawned → /_ping), dockerd's own start in
// the guest (its exec → its first answer, from the agent's timeline), `docker run --rm IMAGE true`,
// a pull of a 100 MiB image from a real registry on the launcher's loopback, the warm ready time
// restored from a state saved by that guest (warm_ratio: warm / cold), the docker disk's use after
// the pull, and the root image's size. With --store, a third arm: the after guest with the
// containerd image store (DINV_DOCKERD_CONFIG features.containerd-snapshotter).
// Ratios: after / before, store / after (lower is better for times, higher for MiB/s).
// Usage: node --import tsx bench/engine.ts --before DIR [--after build/guest] [--store] [--runs 3] [--json]   (root)

import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { clientDocker } from "../test/helpers/clients.js";
import { DINV, DinvProcess, REPO } from "../test/helpers/dinv-process.js";
import { testRootTar } from "../test/helpers/docker-cli.js";
import { TestDockerd } from "../test/helpers/test-dockerd.js";
import { TestRegistry } from "../test/helpers/registry.js";
import { median, table, untilPing } from "./lib.js";
import { tarOf } from "./registry.js";

const LAYER_MIB = 100;
const RUNS_PER_BOOT = 3;

interface Variant {
  name: string;
  dir: string;
  env: Record<string, string>;
}

interface Sample {
  disk_mb: number;
  cold_ms: number;
  dockerd_start_ms: number;
  docker_run_ms: number;
  pull_mib_s: number;
  warm_ms: number;
}

async function coldSample(v: Variant, busybox: string, registry: TestRegistry, source: string): Promise<Omit<Sample, "warm_ms">> {
  const dinv = await DinvProcess.create({ ...v.env, DINV_GUEST_DIR: v.dir, DINV_WARM_START: "off", DINV_INSECURE_REGISTRIES: registry.fromGuest });
  const t0 = Date.now();
  dinv.start();
  try {
    const cold = await untilPing(Number(dinv.env.DINV_DOCKER_PORT), t0);
    const t = (await dinv.waitUntilSettled()).timeline ?? {};
    const docker = (args: string[]) => {
      const r = clientDocker(dinv.dockerHost, args);
      if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr.slice(-400)}`);
      return r;
    };
    docker(["import", "--change", 'CMD ["/bin/sh"]', busybox, "dinv-test/busybox:latest"]);
    const runs: number[] = [];
    for (let i = 0; i < RUNS_PER_BOOT; i++) {
      const r0 = performance.now();
      docker(["run", "--rm", "dinv-test/busybox", "true"]);
      runs.push(performance.now() - r0);
    }
    const p0 = performance.now();
    docker(["pull", "-q", source]);
    const pullMs = performance.now() - p0;
    // What dockerd's data takes on the docker disk now (the image imported, one pulled), seen in the
    // guest: with the containerd store, containerd's root is under it too.
    const du = docker(["run", "--rm", "-v", "/var/lib/docker:/d:ro", "dinv-test/busybox", "du", "-xsm", "/d"]);
    return {
      disk_mb: Number(du.stdout.split("\t")[0]),
      cold_ms: cold,
      dockerd_start_ms: t.ready !== undefined && t.dockerdStarted !== undefined ? t.ready - t.dockerdStarted : Number.NaN,
      docker_run_ms: Math.round(median(runs)),
      pull_mib_s: Number((LAYER_MIB / (pullMs / 1000)).toFixed(1)),
    };
  } finally {
    await dinv.stop("SIGTERM").catch(() => undefined);
    await dinv.kill();
  }
}

async function warmSample(v: Variant, warmDir: string): Promise<number> {
  const dinv = await DinvProcess.create({ ...v.env, DINV_GUEST_DIR: v.dir, DINV_WARM_DIR: warmDir });
  const t0 = Date.now();
  dinv.start();
  try {
    const ms = await untilPing(Number(dinv.env.DINV_DOCKER_PORT), t0);
    const start = dinv.state()?.warm?.start;
    if (start !== "warm") throw new Error(`${v.name}: did not start warm (${start})`);
    return ms;
  } finally {
    await dinv.stop("SIGTERM").catch(() => undefined);
    await dinv.kill();
  }
}

export async function benchEngine(variants: Variant[], runs: number, log: (s: string) => void) {
  const work = mkdtempSync(join(tmpdir(), "dinv-bench-engine-"));
  const busybox = join(work, "busybox.tar");
  writeFileSync(busybox, testRootTar());
  const registry = await TestRegistry.start();
  const engine = await TestDockerd.start();
  try {
    // A 100 MiB image of random bytes on the registry, pushed by this machine's own dockerd.
    const local = (args: string[], input?: Buffer) => engine.docker(args, input ? { input } : {});
    if (local(["import", "-", "dinv-bench/payload"], tarOf("payload.bin", randomBytes(LAYER_MIB * 2 ** 20))).code !== 0) throw new Error("import failed");
    const source = `${registry.fromGuest}/dinv-bench/payload:1`;
    local(["tag", "dinv-bench/payload", `${registry.local}/dinv-bench/payload:1`]);
    if (local(["push", "-q", `${registry.local}/dinv-bench/payload:1`]).code !== 0) throw new Error("push to the registry failed");
    // One warm state a guest, saved by that guest.
    const warmDirs = new Map<string, string>();
    for (const v of variants) {
      const warmDir = join(work, `warm-${v.name}`);
      const saved = spawnSync(process.execPath, [DINV, "warm", "save"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...v.env, DINV_WARM_DIR: warmDir, DINV_GUEST_DIR: v.dir }, encoding: "utf8" });
      if (saved.status !== 0) throw new Error(`${v.name}: dinv warm save failed: ${saved.stderr.slice(-1500)}`);
      warmDirs.set(v.name, warmDir);
    }
    const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
    for (let i = 0; i < runs; i++) {
      for (const v of variants) {
        const cold = await coldSample(v, busybox, registry, source);
        const warm = await warmSample(v, warmDirs.get(v.name)!);
        samples.get(v.name)!.push({ ...cold, warm_ms: warm });
        log(`run ${i + 1}/${runs} ${v.name}: ${JSON.stringify(samples.get(v.name)!.at(-1))}`);
      }
    }
    const summary = variants.map(({ name, dir }) => {
      const s = samples.get(name)!;
      const m = (k: keyof Sample) => median(s.map((x) => x[k]));
      const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { dockerVersion?: string; rootImageBytes?: number };
      // Made by the image build (scripts/compress-root.sh) or an older guest build.
      const zst = join(dir, "rootfs.img.zst");
      return {
        variant: name,
        dockerd: manifest.dockerVersion ?? "?",
        cold_ms: m("cold_ms"),
        dockerd_start_ms: m("dockerd_start_ms"),
        docker_run_ms: m("docker_run_ms"),
        pull_mib_s: m("pull_mib_s"),
        warm_ms: m("warm_ms"),
        warm_ratio: Number((m("warm_ms") / m("cold_ms")).toFixed(3)),
        disk_mb: m("disk_mb"),
        root_image_mb: Math.round((manifest.rootImageBytes ?? 0) / 1e6),
        root_image_zst_mb: existsSync(zst) ? Math.round(statSync(zst).size / 1e6) : Number.NaN,
        samples: s,
      };
    });
    type Key = "cold_ms" | "dockerd_start_ms" | "docker_run_ms" | "pull_mib_s" | "warm_ms" | "root_image_mb" | "disk_mb";
    const ratios = (a: (typeof summary)[number] | undefined, b: (typeof summary)[number] | undefined) => {
      if (!a || !b) return null;
      const r = (k: Key) => Number((a[k] / b[k]).toFixed(3));
      return { cold: r("cold_ms"), dockerd_start: r("dockerd_start_ms"), docker_run: r("docker_run_ms"), pull_ratio: r("pull_mib_s"), warm: r("warm_ms"), disk: r("disk_mb"), root_image: r("root_image_mb") };
    };
    const [before, after, store] = summary;
    return { variants: summary, ratios: ratios(after, before)!, store_ratios: ratios(store, after) };
  } finally {
    await engine.stop();
    registry.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { before: { type: "string" }, after: { type: "string", default: join(REPO, "build/guest") }, store: { type: "boolean", default: false }, runs: { type: "string", default: "3" }, json: { type: "boolean", default: false } } });
  if (!values.before) throw new Error("--before DIR (a guest build to compare against) is required");
  const variants: Variant[] = [
    { name: "before", dir: resolve(values.before), env: {} },
    { name: "after", dir: resolve(values.after), env: {} },
    ...(values.store ? [{ name: "containerd store", dir: resolve(values.after), env: { DINV_DOCKERD_CONFIG: '{"features":{"containerd-snapshotter":true}}' } }] : []),
  ];
  const r = await benchEngine(variants, Number(values.runs), (s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else {
    const v = r.variants;
    const row = (label: string, k: keyof (typeof v)[number], ratio: string | number) => [label, ...v.map((x) => String(x[k])), ratio];
    console.log(table([
      ["median", ...v.map((x) => `${x.variant} (dockerd ${x.dockerd})`), "after / before", ...(r.store_ratios ? ["store / after"] : [])],
      [...row("cold ready, ms", "cold_ms", r.ratios.cold), ...(r.store_ratios ? [r.store_ratios.cold] : [])],
      [...row("dockerd's own start in the guest, ms", "dockerd_start_ms", r.ratios.dockerd_start), ...(r.store_ratios ? [r.store_ratios.dockerd_start] : [])],
      [...row("docker run --rm IMAGE true, ms", "docker_run_ms", r.ratios.docker_run), ...(r.store_ratios ? [r.store_ratios.docker_run] : [])],
      [...row("docker pull 100 MiB, MiB/s (pull_ratio)", "pull_mib_s", r.ratios.pull_ratio), ...(r.store_ratios ? [r.store_ratios.pull_ratio] : [])],
      [...row("dockerd's data after the pull, MB (du in the guest)", "disk_mb", r.ratios.disk), ...(r.store_ratios ? [r.store_ratios.disk] : [])],
      [...row("warm ready, ms", "warm_ms", r.ratios.warm), ...(r.store_ratios ? [r.store_ratios.warm] : [])],
      [...row("warm_ratio (warm / cold)", "warm_ratio", "-"), ...(r.store_ratios ? ["-"] : [])],
      [...row("root image, MB", "root_image_mb", r.ratios.root_image), ...(r.store_ratios ? ["-"] : [])],
    ]));
  }
}
