// The warm-start store: saved VM states, one directory per shape under DINV_WARM_DIR, each holding
// the migration stream, the docker disk as it was at that instant, and a meta file naming both
// with their digests. A state directory appears whole (renamed into place) or not at all.

import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import { z } from "zod";
import { onlyDockerdDiffers, shapeKey, shapeMismatch, WarmShapeSchema, type WarmShape } from "./shape.js";

/** The files of one saved state. */
export const WARM_FILES = { meta: "meta.json", state: "state.bin", disk: "docker.qcow2" } as const;

const FileRecord = z.object({
  /** size, bytes */
  bytes: z.number().int().nonnegative(),
  /** sha256, hex */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** meta.json: read back from disk, so parsed like any outside input. */
export const WarmMetaSchema = z.object({
  format: z.literal(1),
  shape: WarmShapeSchema,
  /** when the state was saved, ISO 8601 */
  savedAt: z.string().max(40),
  /** the migration stream */
  state: FileRecord,
  /** the docker disk at the instant of the save */
  disk: FileRecord,
  /** how long the saving VM was paused, ms */
  pauseMs: z.number().nonnegative(),
  /** the guest's dockerd version at the save */
  dockerVersion: z.string().max(64).optional(),
});
export type WarmMeta = z.infer<typeof WarmMetaSchema>;

export type Found = { ok: true; dir: string; meta: WarmMeta; reconfigure?: true } | { ok: false; reason: string };

/** Both files of a state present with the sizes its meta file names; otherwise why not. */
async function filesWhole(dir: string, meta: WarmMeta): Promise<string | undefined> {
  for (const [file, record] of [[WARM_FILES.state, meta.state], [WARM_FILES.disk, meta.disk]] as const) {
    const size = (await stat(join(dir, file)).catch(() => undefined))?.size;
    if (size !== record.bytes) return `${join(dir, file)} is ${size === undefined ? "missing" : `${size} bytes, the meta file says ${record.bytes}`}`;
  }
  return undefined;
}

/**
 * The state saved for this shape, checked for presence and sizes (digests are checked while it is
 * used); without one, the newest state that differs only in dockerd's configuration (restored, then
 * dockerd restarted with this run's).
 */
export async function findState(warmDir: string, shape: WarmShape): Promise<Found> {
  const dir = join(warmDir, shapeKey(shape));
  const meta = await readMeta(dir);
  if (meta.ok) {
    const mismatch = shapeMismatch(meta.meta.shape, shape);
    if (mismatch) return { ok: false, reason: `the state in ${dir} does not fit: ${mismatch}` };
    const broken = await filesWhole(dir, meta.meta);
    return broken ? { ok: false, reason: broken } : { ok: true, dir, meta: meta.meta };
  }
  if (meta.reason !== "missing") return { ok: false, reason: meta.reason };
  const newestFirst = (await listStates(warmDir)).sort((a, b) => (a.meta.savedAt < b.meta.savedAt ? 1 : -1));
  const near = newestFirst.find((s) => onlyDockerdDiffers(s.meta.shape, shape));
  if (near && !(await filesWhole(near.dir, near.meta))) return { ok: true, dir: near.dir, meta: near.meta, reconfigure: true };
  // None for this shape: name how the newest other one differs, which is what a user changed.
  const newest = newestFirst[0]?.meta;
  if (newest) return { ok: false, reason: `no saved state of this shape in ${warmDir}; the newest one's ${shapeMismatch(newest.shape, shape)}` };
  return { ok: false, reason: `no saved state in ${warmDir} yet` };
}

/** Every complete state in the store (a directory with a valid meta file), by directory name. */
export async function listStates(warmDir: string): Promise<{ key: string; dir: string; meta: WarmMeta }[]> {
  const states = [];
  for (const key of (await readdir(warmDir).catch(() => [] as string[])).sort()) {
    if (key.startsWith(".")) continue;
    const meta = await readMeta(join(warmDir, key));
    if (meta.ok) states.push({ key, dir: join(warmDir, key), meta: meta.meta });
  }
  return states;
}

async function readMeta(dir: string): Promise<{ ok: true; meta: WarmMeta } | { ok: false; reason: string }> {
  const path = join(dir, WARM_FILES.meta);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return { ok: false, reason: "missing" };
  }
  try {
    const parsed = WarmMetaSchema.safeParse(JSON.parse(text));
    if (parsed.success) return { ok: true, meta: parsed.data };
    return { ok: false, reason: `${path} is not a dinv warm-state meta file (${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message})` };
  } catch (err) {
    return { ok: false, reason: `${path} is not JSON (${(err as Error).message})` };
  }
}

/** sha256 of a file, hex. */
export async function hashFile(path: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** Copy a file, hashing what was read; the copy is removed and an error thrown when the digest differs. */
export async function copyVerified(from: string, to: string, expected?: { sha256: string; bytes: number }): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const tee = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  // wx: never over an existing file.
  await pipeline(createReadStream(from, { highWaterMark: 1 << 20 }), tee, createWriteStream(to, { flags: "wx", mode: 0o600 }));
  const got = { sha256: hash.digest("hex"), bytes };
  if (expected && (got.sha256 !== expected.sha256 || got.bytes !== expected.bytes)) {
    await rm(to, { force: true });
    throw new Error(`${from} does not match its meta file (sha256 ${got.sha256.slice(0, 12)}…, ${got.bytes} bytes; expected ${expected.sha256.slice(0, 12)}…, ${expected.bytes} bytes)`);
  }
  return got;
}

/** A fresh directory to save into, beside the states (same filesystem, so the final rename is atomic). */
export const newSaveDir = (warmDir: string) => mkdtemp(join(warmDir, ".saving-"));

/**
 * Put a finished save in place under its shape's name. Another launcher may have saved the same shape
 * meanwhile: its state stays, this one is dropped (both are equally good).
 */
export async function commitState(warmDir: string, saveDir: string, meta: WarmMeta): Promise<{ dir: string; kept: boolean }> {
  await writeFile(join(saveDir, WARM_FILES.meta), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  const dir = join(warmDir, shapeKey(meta.shape));
  try {
    await rename(saveDir, dir);
    return { dir, kept: true };
  } catch {
    await discardSave(saveDir);
    return { dir, kept: false };
  }
}

/** Remove a save directory this launcher made (only its known files, then the directory). */
export async function discardSave(saveDir: string): Promise<void> {
  for (const file of Object.values(WARM_FILES)) await rm(join(saveDir, file), { force: true });
  await rmdir(saveDir).catch(() => undefined);
}
