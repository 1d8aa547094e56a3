// One run's part in the shared cache (DINV_CACHE_DIR): its docker disk is a copy-on-write overlay
// of the key's newest generation (no copy: start time does not grow with the cache), and the job's
// state becomes the key's next generation on a clean stop, on `dinv cache save`, or when the job
// asks through the guest's docker API (a warm state saved on a generation restores its layer over
// that generation only: its shape names it). A live save freezes the guest's docker filesystem, moves
// QEMU's writes to a new overlay (blockdev-snapshot), thaws, and flattens what lies below.

import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import type { CacheInfo } from "../../shared/protocol/cache.js";
import type { GuestCache } from "../../shared/protocol/guest-config.js";
import type { HostConfig } from "../config/env.js";
import { formatSize } from "../config/size.js";
import { imageInfo, qcow2Refusal } from "../disk/images.js";
import type { SharedFile } from "../fs/shared-dir.js";
import type { GuestSession } from "../guest-link/session.js";
import type { Logger } from "../log.js";
import { qmpCommand } from "../qemu/qmp.js";
import { collect } from "./collect.js";
import { chooseGeneration } from "./key.js";
import { promote } from "./promote.js";
import { CacheStore } from "./store.js";

type CacheConfig = NonNullable<HostConfig["cache"]>;

/** The job's overlays in DINV_DOCKER_DIR: the first QEMU starts with, then one per live save. */
export const jobLayerName = (n: number) => (n === 0 ? "cache-job.qcow2" : `cache-job-${n}.qcow2`);
const JOB_LAYER = /^cache-job(-\d+)?\.qcow2$/;
/** The QEMU block node of the job's n-th layer (the first is the docker drive's own node). */
export const layerNode = (n: number) => (n === 0 ? "docker" : `docker-l${n}`);

/** How long the guest's docker filesystem may stay frozen if the host never thaws it, ms. */
const THAW_AFTER_MS = 30_000;


export interface SaveResult {
  ok: boolean;
  generation?: number;
  bytes?: number;
  message: string;
}

export class CacheJob {
  info: CacheInfo;
  private readonly layers: string[];
  private saving: Promise<SaveResult> | undefined;

  private constructor(
    private readonly cache: CacheConfig,
    private readonly store: CacheStore,
    private readonly dockerDir: string,
    /** the generation's disk, open and checked; QEMU and qemu-img reach it through its /proc path */
    private readonly base: { file: SharedFile; key: string; generation: number; createdAtMs: number } | undefined,
    first: string,
    /** the first layer's size, bytes: the generation's or DINV_DOCKER_SIZE, the larger */
    private readonly firstSize: number,
    info: CacheInfo,
  ) {
    this.layers = [first];
    this.info = info;
  }

  /** The disk QEMU starts with, and the generation below it (a path QEMU opens; no header is followed). */
  get disk(): string {
    return this.layers[0]!;
  }
  get backing(): string | undefined {
    return this.base?.file.procPath;
  }
  /** A blank disk of this run's own (no generation): the guest may format it. */
  get mayFormat(): boolean {
    return !this.base;
  }
  /** The generation's identity (key, number, creation time, size): what a warm state saved on it must name. */
  get baseIdentity(): string | undefined {
    return this.base ? `${this.base.key}#${this.base.generation}@${this.base.createdAtMs}/${this.base.file.size}` : undefined;
  }

  /** Create the job's first layer (unless a warm restore copied its saved one there). */
  async makeLayer(): Promise<void> {
    await execa("qemu-img", ["create", "-q", "-f", "qcow2", this.layers[0]!, String(this.firstSize)]);
  }

  get guest(): GuestCache {
    return { removeContainers: !!this.base, saveRequests: true };
  }

  /**
   * The run's docker disk from the cache, or undefined when the run has a docker disk of its own
   * (a DINV_DOCKER_DIR volume: the cache is not used, said in the log).
   */
  static async prepare(config: HostConfig, ownDisk: string, ownDiskExists: boolean, log: Logger): Promise<CacheJob | undefined> {
    const cache = config.cache;
    if (!cache) return undefined;
    if (ownDiskExists) {
      log.info(`cache: not used: ${ownDisk} exists (a docker disk of this run's own); move it aside to start from DINV_CACHE_DIR`);
      return undefined;
    }
    const store = await CacheStore.open(cache.dir);
    // What a killed run left: its overlays hold nothing the cache promised to keep.
    for (const name of await readdir(config.dockerDir).catch(() => [])) if (JOB_LAYER.test(name)) await rm(join(config.dockerDir, name), { force: true });
    const listed = await store.list((what) => log.warn(`cache: skipped ${what}`));
    const choice = chooseGeneration(cache.key, cache.restoreKeys, CacheStore.generationsOf(listed));
    const first = join(config.dockerDir, jobLayerName(0));
    const common = { key: cache.key, save: cache.save };
    if (choice.kind === "generation") {
      const base = await openGeneration(store, choice.key, choice.generation).catch((err: Error) => err);
      if (!(base instanceof Error)) {
        const size = Math.max(base.virtualBytes, config.dockerSizeBytes);
        const createdAtMs = listed.find((k) => k.key === choice.key)?.generations.find((g) => g.generation === choice.generation)?.meta.createdAtMs ?? 0;
        await store.touch(cache.key);
        const from = choice.restoredFrom ? ` (from restore key "${choice.restoredFrom}")` : "";
        const reason = `docker disk: an overlay of "${choice.key}" generation ${choice.generation}${from}, ${formatSize(base.file.size)}`;
        log.info(`cache: ${reason}`);
        return new CacheJob(cache, store, config.dockerDir, { file: base.file, key: choice.key, generation: choice.generation, createdAtMs }, first, size, {
          ...common,
          generation: choice.generation,
          ...(choice.restoredFrom ? { restoredFrom: choice.restoredFrom } : {}),
          bytes: base.file.size,
          reason,
        });
      }
      log.warn(`cache: not using "${choice.key}" generation ${choice.generation}: ${base.message}; starting with an empty docker disk`);
    }
    await store.touch(cache.key);
    const reason = choice.kind === "empty" ? `an empty docker disk: ${choice.reason}` : "an empty docker disk: the generation was refused";
    log.info(`cache: ${reason}`);
    return new CacheJob(cache, store, config.dockerDir, undefined, first, config.dockerSizeBytes, { ...common, generation: null, reason });
  }

  /** Promote now, the VM running (`dinv cache save`, the guest's request). One at a time: a request meanwhile shares it. */
  saveLive(o: { qmpSocket: string; freeze: (thawAfterMs: number) => Promise<{ ok: boolean; detail: string; id: number }>; thaw: (id: number) => void; log: Logger }): Promise<SaveResult> {
    this.saving ??= this.liveSave(o).finally(() => (this.saving = undefined));
    return this.saving;
  }

  private async liveSave(o: Parameters<CacheJob["saveLive"]>[0]): Promise<SaveResult> {
    if (this.cache.save === "off") return this.record({ ok: false, message: "DINV_CACHE_SAVE=off: this run never writes the cache" });
    const n = this.layers.length;
    const next = join(this.dockerDir, jobLayerName(n));
    const size = await virtualSize(this.layers[0]!);
    await execa("qemu-img", ["create", "-q", "-f", "qcow2", next, String(size)]);
    const frozen = await o.freeze(THAW_AFTER_MS);
    if (!frozen.ok) {
      await rm(next, { force: true });
      return this.record({ ok: false, message: `the guest's docker filesystem was not frozen: ${frozen.detail}` });
    }
    try {
      await qmpCommand(o.qmpSocket, "blockdev-add", { arguments: { driver: "qcow2", "node-name": layerNode(n), discard: "unmap", backing: null, file: { driver: "file", filename: next, discard: "unmap" } } });
      // QEMU flushes the old top before the switch; from here the guest writes only to the new layer.
      await qmpCommand(o.qmpSocket, "blockdev-snapshot", { arguments: { node: layerNode(n - 1), overlay: layerNode(n) } });
      this.layers.push(next);
    } catch (err) {
      await rm(next, { force: true });
      return this.record({ ok: false, message: `QEMU did not switch the docker disk to a new layer: ${(err as Error).message}` });
    } finally {
      o.thaw(frozen.id);
    }
    return this.promoteLayers(this.layers.slice(0, n), o.log, "saved");
  }

  /** After QEMU exited: a clean stop promotes (DINV_CACHE_SAVE=on-stop); the job's layers go either way. */
  async end(clean: { ok: boolean; why: string }, log: Logger): Promise<void> {
    await this.saving;
    try {
      if (this.cache.save === "on-stop" && clean.ok) await this.promoteLayers(this.layers, log, "promoted at stop");
      else if (this.cache.save === "on-stop") log.info(`cache: nothing promoted: ${clean.why}`);
    } finally {
      for (const layer of this.layers) await rm(layer, { force: true });
      await this.base?.file.handle.close();
      await this.store.close();
    }
  }

  private async promoteLayers(layers: string[], log: Logger, what: string): Promise<SaveResult> {
    try {
      const from = this.base ? { key: this.base.key, generation: this.base.generation } : undefined;
      const done = await promote(this.store, { key: this.cache.key, chain: { ...(this.base ? { base: this.base.file.procPath } : {}), layers }, ...(from ? { from } : {}) });
      const message = `"${this.cache.key}" generation ${done.generation} ${what}: ${formatSize(done.bytes)} in ${(done.ms / 1000).toFixed(1)} s`;
      log.info({ cache: { key: this.cache.key, ...done } }, `cache: ${message}`);
      const removed = await collect(this.store, { maxBytes: this.cache.maxBytes, keep: { key: this.cache.key, generation: done.generation }, log }).catch((err: Error) => {
        log.warn(`cache: collection failed: ${err.message}`);
        return [];
      });
      if (removed.length) log.info(`cache: removed ${removed.map((r) => `"${r.key}" generation ${r.generation} (${r.why})`).join(", ")}`);
      return this.record({ ok: true, generation: done.generation, bytes: done.bytes, ms: done.ms, message });
    } catch (err) {
      log.error(`cache: promotion failed: ${(err as Error).message}`);
      return this.record({ ok: false, message: `promotion failed: ${(err as Error).message}` });
    }
  }

  private record(r: SaveResult & { ms?: number }): SaveResult {
    this.info = { ...this.info, lastSave: { ok: r.ok, message: r.message.slice(0, 1000), ...(r.generation ? { generation: r.generation } : {}), ...(r.bytes !== undefined ? { bytes: r.bytes } : {}), ...(r.ms !== undefined ? { ms: r.ms } : {}) } };
    return r;
  }
}

/** A save asked of a run: refused with why when the run has no cache or is not ready, else the live save. */
export function saveNow(cache: CacheJob | undefined, o: { configured: boolean; phase: string; qmpSocket: string; session: Pick<GuestSession, "freeze" | "thaw">; log: Logger }): Promise<SaveResult> {
  if (!cache) return Promise.resolve({ ok: false, message: o.configured ? "this run's docker disk is its own (DINV_DOCKER_DIR holds docker.qcow2), not the cache's" : "no cache: DINV_CACHE_DIR is not set" });
  if (o.phase !== "ready") return Promise.resolve({ ok: false, message: `dinv is ${o.phase}; a cache save needs a ready guest` });
  return cache.saveLive({ qmpSocket: o.qmpSocket, freeze: (thawAfterMs) => o.session.freeze(thawAfterMs, 20_000), thaw: (id) => o.session.thaw(id), log: o.log });
}

/** A generation's disk, opened on a checked descriptor, its header refused if it names another file. */
async function openGeneration(store: CacheStore, key: string, generation: number): Promise<{ file: SharedFile; virtualBytes: number }> {
  const file = await store.openDisk(key, generation);
  try {
    const header = Buffer.alloc(104);
    await file.handle.read(header, 0, header.length, 0);
    const refusal = qcow2Refusal(header);
    if (refusal) throw new Error(`its disk ${refusal}`);
    const info = await imageInfo(file.procPath, "its disk");
    if (info.format !== "qcow2") throw new Error(`its disk is ${info.format}, not qcow2`);
    return { file, virtualBytes: info["virtual-size"] };
  } catch (err) {
    await file.handle.close();
    throw err;
  }
}

async function virtualSize(path: string): Promise<number> {
  return (await imageInfo(path))["virtual-size"];
}
