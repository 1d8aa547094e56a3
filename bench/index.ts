// npm run bench: every benchmark, a table, or one JSON object with --json.
// Keys: ready_ratio (dinv / naive baseline ready time, medians; lower is better), mount_ratio
// (original 9p / dinv's default mount transport, virtio-fs, on small files; higher is better;
// mount_ratio_9p the same for dinv's tuned 9p, its fallback), net_ratio (port-forward throughput,
// passt / SLIRP: null when passt cannot run here), idle_rss_mb (QEMU RSS, 512M guest),
// docker_run_speedup (`docker run` with guest ASLR on / dinv's default under TCG; higher is better),
// pull_ratio / push_ratio (dinv over SLIRP / this machine's own dockerd against the same registry;
// higher is better), publish_median_ms (docker run -d -p returned -> the port answers), warm_ratio
// (ready time restored from a saved state / booted cold; lower is better), dind_ratio (the image's
// warm ready time / a DinD peer's, both from docker run; lower is better), carry_ratio (a CI job on the
// previous job's promoted cache generation / the same job on an empty cache; lower is better),
// carry_dind_ratio (that job / the DinD peer's, which has no cache between jobs; lower is better),
// idle_rss_ratio (QEMU RSS at idle / guest RAM, 512M guest), reclaim_ratio (the share of a 1000 MB peak
// QEMU still holds 10 s after the guest freed it; lower is better), share_ratio (total PSS of 4
// image instances restored from one state, its RAM file mapped / 4 x one cold instance's; lower is
// better; bench/density.ts has 8; share_ratio_stream: the host QEMU's restores, which read the stream).

import { parseArgs } from "node:util";
import { benchReady } from "./ready.js";
import { benchMounts } from "./mounts.js";
import { benchMemory, benchReclaim } from "./memory.js";
import { benchApi } from "./api.js";
import { benchNet } from "./net.js";
import { benchExec } from "./exec.js";
import { benchImage } from "./image.js";
import { benchPublish } from "./publish.js";
import { benchRegistry } from "./registry.js";
import { benchWarm } from "./warm.js";
import { benchCache } from "./cache.js";
import { benchDensity } from "./density.js";
import { table } from "./lib.js";

const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, runs: { type: "string", default: "5" } } });
const log = (s: string) => console.error(s);
const ORIGINAL = "none";
const TUNED = "msize=512000,cache=mmap";
const VIRTIOFS = "virtiofs";

const ready = await benchReady(Number(values.runs), log);
const mounts = await benchMounts([ORIGINAL, TUNED, VIRTIOFS], log);
const memory = await benchMemory(["512M", "2G"], log);
const reclaim = await benchReclaim(log);
const api = await benchApi(log);
const net = await benchNet(log);
const exec = await benchExec(log);
const registry = await benchRegistry(log);
const publish = await benchPublish(log);
const image = await benchImage(log);
const warm = await benchWarm(Number(values.runs), log);
// Each run is four CI jobs and two boots under TCG (~10 min): two runs at most.
const cache = await benchCache(Math.min(2, Number(values.runs)), log);
const density = await benchDensity([1, 4], log);

const smallFiles = (variant: string) => Number((mounts[ORIGINAL]!.small_files_write! / mounts[variant]!.small_files_write!).toFixed(2));
const mount_ratio = smallFiles(VIRTIOFS);
const mount_ratio_9p = smallFiles(TUNED);
const summary = {
  ready_ratio: ready.ready_ratio,
  mount_ratio,
  mount_ratio_9p,
  net_ratio: net.net_ratio,
  idle_rss_mb: memory[0]!.qemu_rss_mb,
  idle_rss_ratio: memory[0]!.rss_per_guest_ram,
  reclaim_ratio: reclaim.reclaim_ratio,
  docker_run_speedup: exec.docker_run_speedup,
  pull_ratio: registry.pull_ratio,
  push_ratio: registry.push_ratio,
  publish_median_ms: publish.publish.median_ms,
  image_mb: image.image_mb,
  image_gz_mb: image.image_gz_mb,
  warm_ratio: warm.warm_ratio,
  dind_ratio: warm.dind_ratio,
  carry_ratio: cache.carry_ratio,
  carry_dind_ratio: cache.carry_dind_ratio,
  share_ratio: density.share_ratio,
  share_ratio_stream: density.share_ratio_stream,
  restore_ratio: density.restore.restore_ratio,
  idle_rss_ratio_mapped: density.idle_rss_ratio_mapped,
  ready,
  mounts,
  memory,
  reclaim,
  api,
  net,
  exec,
  registry,
  publish,
  image,
  warm,
  cache,
  density,
};
if (values.json) console.log(JSON.stringify(summary));
else {
  console.log(table([
    ["figure", "value", "baseline (same run)", "ratio"],
    ["ready time, ms (median)", ready.dinv_ms, ready.baseline_ms, ready.ready_ratio],
    ["ready time, DINV_GUEST_ASLR=on, ms", ready.dinv_aslr_ms, ready.baseline_ms, ready.ready_ratio_aslr],
    ["small-file write, virtio-fs, ms", mounts[VIRTIOFS]!.small_files_write!, mounts[ORIGINAL]!.small_files_write!, mount_ratio],
    ["small-file write, tuned 9p, ms", mounts[TUNED]!.small_files_write!, mounts[ORIGINAL]!.small_files_write!, mount_ratio_9p],
    ["QEMU RSS idle, 512M guest, MB", memory[0]!.qemu_rss_mb, 512, memory[0]!.rss_per_guest_ram],
    ["QEMU RSS idle, 2G guest, MB", memory[1]!.qemu_rss_mb, 2048, memory[1]!.rss_per_guest_ram],
    ["QEMU RSS 10 s after a container freed 1000 MB, 2G guest, MB (baseline: the peak; ratio of the rise kept)", reclaim.after_10s_mb, reclaim.peak_mb, reclaim.reclaim_ratio],
    ["docker import via passt, MiB/s", api.passt_import_mib_s ?? "-", api.slirp_import_mib_s, api.passt_ratio ?? "-"],
    ["port forward GET 64 MiB, passt, MiB/s", net.passt.throughput_mib_s ?? "-", net.slirp.throughput_mib_s ?? "-", net.net_ratio ?? "-"],
    ["port forward GET small, passt, ms", net.passt.latency_ms ?? "-", net.slirp.latency_ms ?? "-", net.latency_ratio ?? "-"],
    ["docker run --rm true, ms (baseline: guest ASLR on)", exec.dinv.docker_run_ms, exec.aslr_on.docker_run_ms, exec.docker_run_speedup],
    ["100 execs of a dynamic binary, ms (same)", exec.dinv.execs_100_ms, exec.aslr_on.execs_100_ms, exec.exec_speedup],
    ["docker pull 100 MiB, SLIRP, MiB/s (baseline: this machine's dockerd)", registry.slirp?.pull_mib_s ?? "-", registry.native.pull_mib_s, registry.pull_ratio ?? "-"],
    ["docker push 100 MiB, SLIRP, MiB/s (same)", registry.slirp?.push_mib_s ?? "-", registry.native.push_mib_s, registry.push_ratio ?? "-"],
    ["docker pull 100 MiB, passt, MiB/s (same)", registry.passt?.pull_mib_s ?? "-", registry.native.pull_mib_s, registry.pull_ratio_passt ?? "-"],
    ["publish latency, median / max of 20, ms", `${publish.publish.median_ms} / ${publish.publish.max_ms}`, "-", "-"],
    ["image on disk / gzip -1, MB (docker:dind: 528 / 137)", `${image.image_mb} / ${image.image_gz_mb}`, "-", "-"],
    ["automatic forward GET 64 MiB, MiB/s (baseline: DINV_TCP_PORTS)", publish.auto.throughput_mib_s, publish.static.throughput_mib_s, publish.throughput_ratio],
    ["ready time, warm start, ms (baseline: cold boot)", warm.warm_ms, warm.cold_ms, warm.warm_ratio],
    ["image ready from docker run, warm, ms (baseline: DinD peer)", warm.image_warm_ms, warm.dind_ms, warm.dind_ratio],
    ["image ready from docker run, cold, ms (baseline: DinD peer)", warm.image_cold_ms, warm.dind_ms, warm.dind_ratio_cold],
    ["CI job on the cache, ms (baseline: the same job, empty cache)", cache.second_job_ms, cache.first_job_ms, cache.carry_ratio],
    ["CI job on the cache, ms (baseline: DinD peer's job)", cache.second_job_ms, cache.dind_job_ms, cache.carry_dind_ratio],
    ["ready on a 5 GiB generation, ms (baseline: empty cache)", cache.ready_5g_ms, cache.ready_empty_ms, cache.big_ready_ratio],
    ["promotion at stop, ms (generation MB)", cache.promote_ms, cache.generation_mb, "-"],
    ["PSS of 4 warm image instances (mapped), MB (baseline: 4 x one cold)", density.rows.find((r) => r.mode === "image warm (mapped)" && r.instances === 4)?.pss_total_mb ?? "-", 4 * (density.rows.find((r) => r.mode === "image cold" && r.instances === 1)?.pss_total_mb ?? 0), density.share_ratio ?? "-"],
    ["PSS of 4 warm host-QEMU instances (stream), MB (baseline: 4 x one cold)", density.rows.find((r) => r.mode === "warm" && r.instances === 4)?.pss_total_mb ?? "-", 4 * (density.rows.find((r) => r.mode === "cold" && r.instances === 1)?.pss_total_mb ?? 0), density.share_ratio_stream ?? "-"],
  ]));
}
