// Keeping the cache directory bounded: a few generations a key, DINV_CACHE_MAX for the whole
// directory (the least recently used keys go first), never a generation a QEMU has open (its
// lock), never the generation a run just made. The plan is pure; the store removes.

import type { Logger } from "../log.js";
import { lockIdOf, readLocks } from "./locks.js";
import type { CacheStore, KeyEntry } from "./store.js";
import { removeFlat } from "./store.js";

/** Generations kept a key: the newest and two before it (a run on one of those may still be going). */
export const KEEP_PER_KEY = 3;
/** A promotion directory untouched this long was cut short (a killed launcher): removed, ms. */
export const STALE_PROMOTION_MS = 6 * 3600_000;

export interface Removal {
  dirName: string;
  key: string;
  generation: number;
  bytes: number;
  why: string;
}

/** What to remove, oldest reason first. Pure. */
export function planCollection(keys: KeyEntry[], o: { maxBytes: number; locked: (dev: bigint, ino: bigint) => boolean; keep?: { key: string; generation: number } }): Removal[] {
  const removals: Removal[] = [];
  const kept = new Map<string, { entry: KeyEntry; gens: KeyEntry["generations"] }>();
  const protectedGen = (e: KeyEntry, g: number) => o.keep?.key === e.key && o.keep.generation === g;
  for (const entry of keys) {
    const newestFirst = [...entry.generations].sort((a, b) => b.generation - a.generation);
    const stay: KeyEntry["generations"] = [];
    newestFirst.forEach((g, i) => {
      if (i < KEEP_PER_KEY || protectedGen(entry, g.generation) || o.locked(g.dev, g.ino)) stay.push(g);
      else removals.push({ dirName: entry.dirName, key: entry.key, generation: g.generation, bytes: g.meta.bytes, why: `more than ${KEEP_PER_KEY} generations of the key` });
    });
    kept.set(entry.dirName, { entry, gens: stay });
  }
  let total = [...kept.values()].reduce((sum, k) => sum + k.gens.reduce((s, g) => s + g.meta.bytes, 0), 0);
  // Least recently used keys first; within a key, oldest generations first.
  const lru = [...kept.values()].sort((a, b) => a.entry.usedAtMs - b.entry.usedAtMs);
  for (const { entry, gens } of lru) {
    for (const g of [...gens].sort((a, b) => a.generation - b.generation)) {
      if (total <= o.maxBytes) return removals;
      if (protectedGen(entry, g.generation) || o.locked(g.dev, g.ino)) continue;
      removals.push({ dirName: entry.dirName, key: entry.key, generation: g.generation, bytes: g.meta.bytes, why: `the cache is over DINV_CACHE_MAX (least recently used key)` });
      total -= g.meta.bytes;
    }
  }
  return removals;
}

/** Collect now: remove what the plan says, and promotions cut short long ago. Returns what was removed. */
export async function collect(store: CacheStore, o: { maxBytes: number; keep?: { key: string; generation: number }; log?: Logger; now?: number }): Promise<Removal[]> {
  const keys = await store.list((what) => o.log?.warn(`cache: skipped ${what}`));
  const locks = await readLocks();
  const removals = planCollection(keys, { maxBytes: o.maxBytes, locked: (dev, ino) => locks(lockIdOf(dev, ino)), ...(o.keep ? { keep: o.keep } : {}) });
  for (const r of removals) await store.removeGeneration(r.dirName, r.generation);
  for (const dirName of new Set(removals.map((r) => r.dirName))) await store.removeKeyIfEmpty(dirName);
  const now = o.now ?? Date.now();
  for (const name of await store.tmp.list()) {
    if (!/^p-[0-9a-f]{18}$/.test(name)) continue;
    const st = await store.tmp.stat(name);
    if (st?.isDirectory() && now - st.mtimeMs > STALE_PROMOTION_MS) await removeFlat(store.tmp, name);
  }
  return removals;
}
