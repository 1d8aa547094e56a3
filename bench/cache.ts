// The shared cache (DINV_CACHE_DIR) on a CI-shaped job, in one run:
// - the job: pull three images (~300 MiB together, incompressible) from a real registry on this
//   machine's loopback (Debian's docker-registry; the guest reaches it as 10.0.2.2), a BuildKit build
//   with a cache mount and three layers of work, a container run from it; timed from the launcher's
//   start (dinv) or `docker run` (the peer) to the job's last command done.
// - carry_ratio: dinv's second job (on the first job's promoted generation) / its first (empty cache).
// - carry_dind_ratio: dinv's second job / the DinD peer's second job (the peer, the guest's own dockerd
//   in a privileged container, has no cache between jobs).
// - promote_ms: the promotion at the first job's clean stop; ready on a 5 GiB generation against an
//   empty generation (an empty filesystem; big_ready_ratio: no copy is made, so it should stay within 10 %).
// Root only (the peer and the images need a dockerd). Usage: node --import tsx bench/cache.ts [--runs N] [--json]

import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CACHE_FILES, CacheStore } from "../host/cache/store.js";
import { clientDocker } from "../test/helpers/clients.js";
import { DinvProcess, freePort } from "../test/helpers/dinv-process.js";
import { testRootTar } from "../test/helpers/docker-cli.js";
import { TestDockerd } from "../test/helpers/test-dockerd.js";
import { TestRegistry } from "../test/helpers/registry.js";
import { median, table, untilPing } from "./lib.js";
import { tarOf } from "./registry.js";
import { importDindImage, PRIVILEGED } from "./warm.js";

const LAYER_MIB = 100;
const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
type Docker = (args: string[], input?: Buffer) => { code: number; stdout: string; stderr: string };

const dockerfile = (base: string) => `FROM ${base}
RUN --mount=type=cache,target=/cache sh -c 'head -c 20000000 /dev/urandom > /cache/blob; sha256sum /cache/blob > /one'
RUN sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo $i > /two'
RUN sh -c 'sha256sum /payload-0.bin > /three'
CMD ["cat", "/one", "/two", "/three"]
`;

function must(docker: Docker, args: string[], input?: Buffer): string {
  const r = docker(args, input);
  if (r.code !== 0) throw new Error(`docker ${args.slice(0, 3).join(" ")}: ${r.stderr.slice(-800)}`);
  return r.stdout + r.stderr;
}

/** Three images on the registry: the first a busybox root with a payload (the build's base), the others payload only. */
function pushImages(engine: TestDockerd, registry: TestRegistry): string[] {
  const local: Docker = (args, input) => engine.docker(args, input ? { input } : {});
  const root = testRootTar();
  return [0, 1, 2].map((i) => {
    const payload = tarOf(`payload-${i}.bin`, randomBytes(LAYER_MIB * 2 ** 20));
    // A tar ends in zero blocks (padded to tar's record size): the busybox root's cut off, the payload appended.
    const tar = i === 0 ? Buffer.concat([withoutEnd(root), payload]) : payload;
    const name = `dinv-bench/cache-${i}:1`;
    must(local, ["import", ...(i === 0 ? ["--change", 'CMD ["/bin/sh"]'] : []), "-", name], tar);
    must(local, ["tag", name, `${registry.local}/${name}`]);
    must(local, ["push", "-q", `${registry.local}/${name}`]);
    local(["image", "rm", "-f", name, `${registry.local}/${name}`]);
    return name;
  });
}

/** A tar archive without its trailing zero blocks. */
function withoutEnd(tar: Buffer): Buffer {
  let end = tar.length;
  while (end >= 512 && tar.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
  return tar.subarray(0, end);
}

/** The job's work against one engine: pull, build, run; what the build found cached. */
function work(docker: Docker, registryHost: string, names: string[], context: string, hostNet: boolean): { cachedSteps: number } {
  for (const n of names) must(docker, ["pull", "-q", `${registryHost}/${n}`]);
  writeFileSync(join(context, "Dockerfile"), dockerfile(`${registryHost}/${names[0]}`));
  const net = hostNet ? ["--network", "host"] : [];
  const build = must(docker, ["build", ...net, "--progress=plain", "-t", "dinv-bench/app", context]);
  const out = must(docker, ["run", "--rm", ...net, "dinv-bench/app"]);
  if (!/200000/.test(out)) throw new Error(`the built image ran wrong: ${out.slice(-300)}`);
  return { cachedSteps: (build.match(/#\d+ CACHED/g) ?? []).length };
}

async function dinvJob(o: { cacheDir: string; key: string; registry: TestRegistry; names: string[]; context: string }) {
  const d = await DinvProcess.create({ DINV_CACHE_DIR: o.cacheDir, DINV_CACHE_KEY: o.key, DINV_INSECURE_REGISTRIES: o.registry.fromGuest, DINV_WARM_START: "off" });
  const t0 = Date.now();
  d.start();
  try {
    const state = await d.waitUntilSettled(600);
    if (state.phase !== "ready") throw new Error(`dinv not ready: ${d.tail()}`);
    const readyMs = Date.now() - t0;
    const { cachedSteps } = work((args, input) => clientDocker(d.dockerHost, args, input ? { input } : {}), o.registry.fromGuest, o.names, o.context, false);
    const jobMs = Date.now() - t0;
    const stop = await d.stop();
    if (stop.code !== 0) throw new Error(`dinv stop: exit ${stop.code}: ${d.tail()}`);
    const promoted = d.logs.find((l) => typeof l.cache === "object" && l.cache !== null) as { cache?: { ms: number; bytes: number } } | undefined;
    return { readyMs, jobMs, cachedSteps, promoteMs: promoted?.cache?.ms, generationMb: promoted?.cache ? Math.round(promoted.cache.bytes / 1e6) : undefined };
  } finally {
    await d.kill();
  }
}

/** The DinD peer's job: a fresh dockerd in a privileged container on the host network (the registry is on loopback). */
async function dindJob(engine: TestDockerd, image: string, registry: TestRegistry, names: string[], context: string) {
  const port = await freePort();
  const name = `dinv-bench-cache-dind-${process.pid}-${port}`;
  const t0 = Date.now();
  const dockerd = ["dockerd", `--host=tcp://127.0.0.1:${port}`, "--tls=false", "--bridge=none", "--iptables=false", "--ip6tables=false", `--insecure-registry=${registry.local}`, `--exec-root=/run/dind-${port}`];
  // The peer runs containers: its cgroups must be writable, as --privileged makes them (not so without it, on cgroup v1).
  const flags = ["--network", "host", "--init", "--name", name, "-v", "/var/lib/docker", "-v", "/sys/fs/cgroup:/sys/fs/cgroup"];
  let run = engine.docker(["run", "-d", "--rm", ...PRIVILEGED[0]!, ...flags, image, ...dockerd]);
  if (run.code !== 0 && /apply caps/.test(run.stderr)) {
    engine.docker(["rm", "-f", name]);
    run = engine.docker(["run", "-d", "--rm", ...PRIVILEGED[1]!, ...flags, image, ...dockerd]);
  }
  if (run.code !== 0) throw new Error(`docker run (DinD peer) failed: ${run.stderr}`);
  try {
    const readyMs = await untilPing(port, t0, 120_000);
    const { cachedSteps } = work((args, input) => clientDocker(`tcp://127.0.0.1:${port}`, args, input ? { input } : {}), registry.local, names, context, true);
    return { readyMs, jobMs: Date.now() - t0, cachedSteps };
  } finally {
    engine.docker(["rm", "-f", "-v", name]);
  }
}

/** A generation that boots: an ext4 filesystem holding a file of fillerBytes (none: an empty generation), made on this side and committed. */
async function makeGeneration(cacheDir: string, key: string, dockerSizeBytes: number, fillerBytes: number): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), "dinv-bench-big-"));
  try {
    mkdirSync(join(work, "root"));
    if (fillerBytes) execFileSync("sh", ["-c", `head -c ${fillerBytes} /dev/zero | tr '\\0' '\\253' > ${join(work, "root", "filler")}`]);
    execFileSync("truncate", ["-s", String(dockerSizeBytes), join(work, "fs.raw")]);
    execFileSync("mkfs.ext4", ["-q", "-L", "dinv-docker", "-d", join(work, "root"), join(work, "fs.raw")]);
    rmSync(join(work, "root"), { recursive: true });
    const store = await CacheStore.open(cacheDir);
    try {
      const { dir, name } = await store.tmp.makeTempDir("p-");
      execFileSync("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", join(work, "fs.raw"), dir.procEntry(CACHE_FILES.disk)]);
      const bytes = (await dir.stat(CACHE_FILES.disk))!.size;
      await dir.writeAtomic(CACHE_FILES.meta, JSON.stringify({ version: 1, key, createdAtMs: Date.now(), bytes, virtualBytes: dockerSizeBytes }));
      await dir.close();
      await store.commit(key, name);
      await store.touch(key);
      return bytes;
    } finally {
      await store.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function readyOn(cacheDir: string, key: string): Promise<number> {
  const d = await DinvProcess.create({ DINV_CACHE_DIR: cacheDir, DINV_CACHE_KEY: key, DINV_WARM_START: "off", DINV_CACHE_SAVE: "off" });
  const t0 = Date.now();
  d.start();
  try {
    const state = await d.waitUntilSettled(600);
    if (state.phase !== "ready") throw new Error(`dinv not ready: ${d.tail()}`);
    return Date.now() - t0;
  } finally {
    await d.stop();
    await d.kill();
  }
}

export async function benchCache(runs: number, log: (s: string) => void) {
  const registry = await TestRegistry.start();
  const engine = await TestDockerd.start();
  const dindImage = "dinv-bench/dind:latest";
  const context = mkdtempSync(join(tmpdir(), "dinv-bench-cache-ctx-"));
  try {
    const names = pushImages(engine, registry);
    importDindImage(engine, dindImage);
    const first: Awaited<ReturnType<typeof dinvJob>>[] = [];
    const second: Awaited<ReturnType<typeof dinvJob>>[] = [];
    const peer: Awaited<ReturnType<typeof dindJob>>[] = [];
    for (let i = 0; i < runs; i++) {
      const cacheDir = mkdtempSync(join(tmpdir(), "dinv-bench-cache-"));
      first.push(await dinvJob({ cacheDir, key: "bench/main", registry, names, context }));
      log(`run ${i + 1}: dinv's first job ${first.at(-1)!.jobMs} ms (ready ${first.at(-1)!.readyMs} ms)`);
      second.push(await dinvJob({ cacheDir, key: "bench/main", registry, names, context }));
      log(`run ${i + 1}: dinv's second job ${second.at(-1)!.jobMs} ms (ready ${second.at(-1)!.readyMs} ms)`);
      // The peer's two jobs are alike (no cache between them): both run, the second is compared.
      await dindJob(engine, dindImage, registry, names, context);
      peer.push(await dindJob(engine, dindImage, registry, names, context));
      log(`run ${i + 1}/${runs}: dinv first job ${first.at(-1)!.jobMs} ms (promoted ${first.at(-1)!.generationMb} MB in ${first.at(-1)!.promoteMs} ms), second ${second.at(-1)!.jobMs} ms (${second.at(-1)!.cachedSteps} CACHED steps); DinD peer ${peer.at(-1)!.jobMs} ms`);
      rmSync(cacheDir, { recursive: true, force: true });
    }
    const bigDir = mkdtempSync(join(tmpdir(), "dinv-bench-cache-big-"));
    const bigBytes = await makeGeneration(bigDir, "bench/big", 64 * 2 ** 30, 5 * 2 ** 30);
    await makeGeneration(bigDir, "bench/empty", 64 * 2 ** 30, 0);
    const emptyReady: number[] = [];
    const bigReady: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Interleaved: drift on a shared machine hits both alike. Both mount a filesystem (an empty cache would format one).
      emptyReady.push(await readyOn(bigDir, "bench/empty"));
      bigReady.push(await readyOn(bigDir, "bench/big"));
    }
    rmSync(bigDir, { recursive: true, force: true });
    const firstMs = median(first.map((j) => j.jobMs));
    const secondMs = median(second.map((j) => j.jobMs));
    const peerMs = median(peer.map((j) => j.jobMs));
    return {
      first_job_ms: firstMs,
      second_job_ms: secondMs,
      dind_job_ms: peerMs,
      carry_ratio: ratio(secondMs, firstMs),
      carry_dind_ratio: ratio(secondMs, peerMs),
      second_job_cached_steps: median(second.map((j) => j.cachedSteps)),
      promote_ms: median(first.map((j) => j.promoteMs ?? 0)),
      generation_mb: median(first.map((j) => j.generationMb ?? 0)),
      ready_empty_ms: median(emptyReady),
      ready_5g_ms: median(bigReady),
      big_generation_mb: Math.round(bigBytes / 1e6),
      big_ready_ratio: ratio(median(bigReady), median(emptyReady)),
    };
  } finally {
    engine.docker(["image", "rm", "-f", dindImage]);
    await engine.stop();
    registry.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, runs: { type: "string", default: "1" } } });
  const r = await benchCache(Number(values.runs), (s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else
    console.log(table([
      ["figure", "value", "baseline (same run)", "ratio"],
      ["CI job on the cache, ms (baseline: dinv's first job, empty cache)", r.second_job_ms, r.first_job_ms, r.carry_ratio],
      ["CI job on the cache, ms (baseline: DinD peer's job)", r.second_job_ms, r.dind_job_ms, r.carry_dind_ratio],
      ["ready on a 5 GiB generation, ms (baseline: empty cache)", r.ready_5g_ms, r.ready_empty_ms, r.big_ready_ratio],
      ["promotion at stop, ms (generation MB)", r.promote_ms, r.generation_mb, "-"],
    ]));
}
