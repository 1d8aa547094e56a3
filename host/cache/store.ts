// The cache directory (DINV_CACHE_DIR), shared by runners: keys, their generations, and the
// promotions in progress. Every entry is reached through SharedDir (no symlink, FIFO or planted
// file is followed or loaded); a generation exists only once its directory, complete with its
// meta, was renamed into place, so a promotion cut short leaves nothing a start takes.
//
//   <dir>/keys/k-<sha256(key)>/key.json                  the key's name and when a run last used it
//   <dir>/keys/k-<sha256(key)>/gen-NNNNNNNN/disk.qcow2   a self-contained docker disk (no backing file)
//   <dir>/keys/k-<sha256(key)>/gen-NNNNNNNN/meta.json    what it is (written before the rename)
//   <dir>/tmp/p-<random>/                                a promotion in progress

import { lstat } from "node:fs/promises";
import { z } from "zod";
import { SharedDir, SharedEntryError, type SharedFile } from "../fs/shared-dir.js";
import { generationDirName, generationNumber, keyDirName, nextGeneration, type KeyGenerations } from "./key.js";

export const CACHE_FILES = { keys: "keys", tmp: "tmp", key: "key.json", disk: "disk.qcow2", meta: "meta.json" } as const;

/** Largest docker disk image a generation may be, bytes. */
export const MAX_GENERATION_BYTES = 64 * 2 ** 40;
const MAX_JSON_BYTES = 64 * 1024;

export const KeyFileSchema = z.object({
  /** the key, as DINV_CACHE_KEY spells it */
  key: z.string().max(128),
  /** when a run last started on or promoted to this key, ms since the epoch */
  usedAtMs: z.number().int().nonnegative(),
});

export const GenerationMetaSchema = z.object({
  version: z.literal(1),
  key: z.string().max(128),
  /** when the promotion finished, ms since the epoch */
  createdAtMs: z.number().int().nonnegative(),
  /** disk.qcow2's size, bytes */
  bytes: z.number().int().nonnegative(),
  /** the guest's view of the disk, bytes */
  virtualBytes: z.number().int().positive(),
  /** the generation the job started from */
  from: z.object({ key: z.string().max(128), generation: z.number().int().positive() }).optional(),
});
export type GenerationMeta = z.infer<typeof GenerationMetaSchema>;

export interface GenerationEntry {
  generation: number;
  meta: GenerationMeta;
  /** the disk's device and inode, for the lock check */
  dev: bigint;
  ino: bigint;
}

export interface KeyEntry {
  dirName: string;
  key: string;
  usedAtMs: number;
  generations: GenerationEntry[];
}

export class CacheStore {
  private constructor(
    readonly root: SharedDir,
    readonly keys: SharedDir,
    readonly tmp: SharedDir,
  ) {}

  static async open(path: string): Promise<CacheStore> {
    const root = await SharedDir.open(path, { create: true, mode: 0o700 });
    return new CacheStore(root, await root.subdir(CACHE_FILES.keys, { create: true }), await root.subdir(CACHE_FILES.tmp, { create: true }));
  }

  async close(): Promise<void> {
    await Promise.all([this.root.close(), this.keys.close(), this.tmp.close()]);
  }

  /** A key's directory, created if asked; undefined when absent. */
  async keyDir(key: string, create = false): Promise<SharedDir | undefined> {
    try {
      return await this.keys.subdir(keyDirName(key), { create });
    } catch (err) {
      if (err instanceof SharedEntryError && err.code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** Every key with its complete generations; an entry that is not what it should be is skipped and reported. */
  async list(onSkip: (what: string) => void = () => undefined): Promise<KeyEntry[]> {
    const out: KeyEntry[] = [];
    for (const dirName of (await this.keys.list()).sort()) {
      if (!/^k-[0-9a-f]{32}$/.test(dirName)) continue;
      let dir: SharedDir;
      try {
        dir = await this.keys.subdir(dirName);
      } catch (err) {
        onSkip((err as Error).message);
        continue;
      }
      try {
        const keyFile = await dir.readJson(CACHE_FILES.key, KeyFileSchema, MAX_JSON_BYTES).catch((err: Error) => void onSkip(err.message));
        if (!keyFile || keyDirName(keyFile.key) !== dirName) continue;
        out.push({ dirName, key: keyFile.key, usedAtMs: keyFile.usedAtMs, generations: await this.generationsIn(dir, keyFile.key, onSkip) });
      } finally {
        await dir.close();
      }
    }
    return out;
  }

  private async generationsIn(dir: SharedDir, key: string, onSkip: (what: string) => void): Promise<GenerationEntry[]> {
    const gens: GenerationEntry[] = [];
    for (const name of await dir.list()) {
      const generation = generationNumber(name);
      if (generation === undefined) continue;
      try {
        const gen = await dir.subdir(name);
        try {
          const meta = await gen.readJson(CACHE_FILES.meta, GenerationMetaSchema, MAX_JSON_BYTES);
          const st = await lstat(gen.entry(CACHE_FILES.disk), { bigint: true }).catch(() => undefined);
          if (!meta || !st?.isFile() || meta.key !== key) continue;
          gens.push({ generation, meta, dev: st.dev, ino: st.ino });
        } finally {
          await gen.close();
        }
      } catch (err) {
        onSkip((err as Error).message);
      }
    }
    return gens.sort((a, b) => a.generation - b.generation);
  }

  /** The form the choice of a generation takes. */
  static generationsOf(entries: KeyEntry[]): KeyGenerations[] {
    return entries.map((e) => ({ key: e.key, generations: e.generations.map((g) => g.generation) }));
  }

  /** A generation's disk, opened and checked on its descriptor (a regular file of the launcher's user). */
  async openDisk(key: string, generation: number): Promise<SharedFile> {
    const dir = await this.keyDir(key);
    if (!dir) throw new SharedEntryError(this.keys.shown(keyDirName(key)), "absent");
    try {
      const gen = await dir.subdir(generationDirName(generation));
      try {
        const file = await gen.openFile(CACHE_FILES.disk, { maxBytes: MAX_GENERATION_BYTES });
        if (!file) throw new SharedEntryError(gen.shown(CACHE_FILES.disk), "absent");
        return file;
      } finally {
        await gen.close();
      }
    } finally {
      await dir.close();
    }
  }

  /** Record that a run used a key now (the least recently used keys are collected first). */
  async touch(key: string, now = Date.now()): Promise<void> {
    const dir = await this.keyDir(key, true);
    try {
      await dir!.writeAtomic(CACHE_FILES.key, JSON.stringify({ key, usedAtMs: now }));
    } finally {
      await dir!.close();
    }
  }

  /**
   * Make a promotion's directory (tmp/p-…, holding disk.qcow2 and meta.json) the key's next
   * generation: renamed into place under the first free number (a directory rename never replaces
   * a non-empty one, so two promoters never take one number). Returns the number taken.
   */
  async commit(key: string, tmpName: string): Promise<number> {
    const dir = await this.keyDir(key, true);
    try {
      for (let attempt = 0; attempt < 100; attempt++) {
        const present = (await dir!.list()).map(generationNumber).filter((n): n is number => n !== undefined);
        const n = nextGeneration(present);
        try {
          await this.tmp.renameTo(tmpName, dir!, generationDirName(n));
          await dir!.sync();
          return n;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
        }
      }
      throw new Error(`${dir!.path}: no free generation number after 100 attempts`);
    } finally {
      await dir!.close();
    }
  }

  /** Remove a generation: its two files, then its directory (never anything recursive). */
  async removeGeneration(keyDirNameOf: string, generation: number): Promise<void> {
    const dir = await this.keys.subdir(keyDirNameOf);
    try {
      await removeFlat(dir, generationDirName(generation));
    } finally {
      await dir.close();
    }
  }

  /** Remove a key whose generations are gone: its key file and directory. */
  async removeKeyIfEmpty(keyDirNameOf: string): Promise<void> {
    const dir = await this.keys.subdir(keyDirNameOf);
    try {
      if ((await dir.list()).some((n) => generationNumber(n) !== undefined)) return;
      await dir.remove(CACHE_FILES.key);
    } finally {
      await dir.close();
    }
    await this.keys.removeDir(keyDirNameOf);
  }
}

/** Remove a directory made of plain files the cache writes (disk, meta, temporaries), then the directory. */
export async function removeFlat(parent: SharedDir, name: string): Promise<void> {
  let dir: SharedDir;
  try {
    dir = await parent.subdir(name);
  } catch {
    return;
  }
  try {
    for (const entry of await dir.list()) await dir.remove(entry);
  } finally {
    await dir.close();
  }
  await parent.removeDir(name);
}
