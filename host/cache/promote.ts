// A promotion: the job's docker disk (a generation with the job's overlays on top, or a disk of
// its own) flattened into a new, self-contained image in the cache's tmp directory, synced, its
// meta written, and the directory renamed into place as the key's next generation. Only the
// rename publishes it: a promotion cut short at any point leaves a tmp directory no start takes.

import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { execa } from "execa";
import { imageInfo } from "../disk/images.js";
import { CACHE_FILES, type CacheStore, type GenerationMeta, removeFlat } from "./store.js";

/** A docker disk's layers, bottom first: the generation it started from (if any), then the overlays. */
export interface DiskChain {
  /** the generation's disk, as a path QEMU and qemu-img may open (a /proc/PID/fd path of the checked file) */
  base?: string;
  /** the job's overlays (or its one plain disk), bottom first */
  layers: string[];
}

/**
 * qemu-img's json: filename for a chain: every backing named here, none taken from a header (an
 * overlay's header names whatever path it was made with). Pure.
 */
export function chainSpec(chain: DiskChain): Record<string, unknown> {
  let node: Record<string, unknown> | null = chain.base ? { driver: "qcow2", backing: null, file: { driver: "file", filename: chain.base } } : null;
  for (const layer of chain.layers) node = { driver: "qcow2", backing: node, file: { driver: "file", filename: layer } };
  if (!node) throw new Error("a disk chain needs at least one layer");
  return node;
}


export interface Promoted {
  generation: number;
  bytes: number;
  ms: number;
}

export async function promote(store: CacheStore, o: { key: string; chain: DiskChain; from?: { key: string; generation: number }; signal?: AbortSignal }): Promise<Promoted> {
  const started = Date.now();
  const { dir, name } = await store.tmp.makeTempDir("p-");
  let committed = false;
  try {
    const source = `json:${JSON.stringify(chainSpec(o.chain))}`;
    // The target is created here (O_EXCL, no link followed) and qemu-img writes it through this
    // descriptor's /proc path: nothing planted in the shared directory meanwhile redirects the write.
    const handle = await open(dir.entry(CACHE_FILES.disk), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const target = `/proc/${process.pid}/fd/${handle.fd}`;
    let bytes: number;
    let virtualBytes: number;
    try {
      // -U: a live save reads layers the running QEMU still holds (they are frozen: no longer written).
      // -W: clusters written out of order (faster); the file is synced below before its meta is written.
      await execa("qemu-img", ["convert", "-U", "-q", "-t", "writeback", "-W", "-f", "qcow2", "-O", "qcow2", source, target], { ...(o.signal ? { cancelSignal: o.signal } : {}) });
      await handle.sync();
      bytes = (await handle.stat()).size;
      virtualBytes = (await imageInfo(target))["virtual-size"];
    } finally {
      await handle.close();
    }
    const meta: GenerationMeta = { version: 1, key: o.key, createdAtMs: Date.now(), bytes, virtualBytes, ...(o.from ? { from: o.from } : {}) };
    await dir.writeAtomic(CACHE_FILES.meta, JSON.stringify(meta));
    await dir.sync();
    await dir.close();
    const generation = await store.commit(o.key, name);
    committed = true;
    await store.touch(o.key);
    return { generation, bytes, ms: Date.now() - started };
  } finally {
    await dir.close();
    if (!committed) await removeFlat(store.tmp, name);
  }
}
