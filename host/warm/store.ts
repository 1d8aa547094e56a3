// The warm-start store: saved VM states, one directory per shape under DINV_WARM_DIR, each holding
// the migration stream, the docker disk as it was at that instant, and a meta file naming both
// with their digests. A state directory appears whole (renamed into place) or not at all.

import { createHash, randomBytes } from "node:crypto";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { access, link, mkdtemp, rename, rm, rmdir, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import { z } from "zod";
import { SharedDir, SharedEntryError, type SharedFile } from "../fs/shared-dir.js";
import { onlyDockerdDiffers, shapeKey, shapeMismatch, WarmShapeSchema, type WarmShape } from "./shape.js";

/** The files of one saved state. */
export const WARM_FILES = { meta: "meta.json", state: "state.bin", disk: "docker.qcow2", ram: "ram.bin", devices: "devices.bin" } as const;

/** Largest meta file read, bytes: a planted giant file is refused, not read. */
const MAX_META_BYTES = 64 * 1024;
/** Largest state or disk file accepted, bytes (the meta file names the exact size too). */
const MAX_STATE_FILE_BYTES = 256 * 2 ** 30;

/**
 * Whether a run may write the warm directory: a volume mounted read-only (the recommended set-up
 * for job containers, whose states come from a trusted `dinv warm save`) is only read.
 */
export const warmDirWritable = (warmDir: string) => access(warmDir, constants.W_OK).then(() => true, () => false);

const FileRecord = z.object({
  /** size, bytes */
  bytes: z.number().int().nonnegative(),
  /** sha256, hex */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** A RAM file's identity when it was saved: a file written since (or a copy) has another inode or change time. */
const FileIdentity = z.object({
  /** inode number, decimal */
  ino: z.string().regex(/^\d{1,20}$/),
  /** last modification, ns since the epoch, decimal */
  mtimeNs: z.string().regex(/^\d{1,24}$/),
  /** last status change (no user can set it), ns since the epoch, decimal */
  ctimeNs: z.string().regex(/^\d{1,24}$/),
});
export type FileIdentity = z.infer<typeof FileIdentity>;

/** The same state as a RAM file every restore maps privately, and the device state that goes with it. */
const MappedRecord = z.object({
  /** the guest's RAM, as the template QEMU left it */
  ram: FileRecord.extend({ identity: FileIdentity }),
  /** the device state, saved with x-ignore-shared (no RAM pages) */
  devices: FileRecord,
});

/** meta.json: read back from disk, so parsed like any outside input. */
export const WarmMetaSchema = z.object({
  format: z.literal(1),
  shape: WarmShapeSchema,
  /** when the state was saved, ISO 8601 (printed by dinv warm status: nothing but a timestamp's characters) */
  savedAt: z.string().regex(/^[0-9T:.Z+-]{10,40}$/),
  /** the migration stream */
  state: FileRecord,
  /** the docker disk at the instant of the save */
  disk: FileRecord,
  /** how long the saving VM was paused, ms */
  pauseMs: z.number().nonnegative(),
  /** the state as a mapped RAM file too (QEMU 8.2 and later save it; absent: the stream only) */
  mapped: MappedRecord.optional(),
  /** the guest's dockerd version at the save */
  dockerVersion: z.string().regex(/^[0-9A-Za-z.+~:_-]{1,64}$/).optional(),
});
export type WarmMeta = z.infer<typeof WarmMetaSchema>;

export type Found = { ok: true; dir: string; meta: WarmMeta; reconfigure?: true } | { ok: false; reason: string };

/** Open both files of a state, each checked on its descriptor (a regular file of the launcher's user, of the size its meta file names). */
export async function openStateFiles(dir: string, meta: WarmMeta): Promise<{ state: SharedFile; disk: SharedFile }> {
  const d = await SharedDir.open(dir);
  const opened: SharedFile[] = [];
  try {
    for (const [file, record] of [[WARM_FILES.state, meta.state], [WARM_FILES.disk, meta.disk]] as const) {
      const f = await d.openFile(file, { maxBytes: MAX_STATE_FILE_BYTES, bytes: record.bytes });
      if (!f) throw new Error(`${join(dir, file)} is missing`);
      opened.push(f);
    }
    return { state: opened[0]!, disk: opened[1]! };
  } catch (err) {
    for (const f of opened) await f.handle.close();
    throw err;
  } finally {
    await d.close();
  }
}

/** Both files of a state present, checked, with the sizes its meta file names; otherwise why not. */
async function filesWhole(dir: string, meta: WarmMeta): Promise<string | undefined> {
  try {
    const { state, disk } = await openStateFiles(dir, meta);
    await state.handle.close();
    await disk.handle.close();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
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
  const warm = await SharedDir.open(warmDir).catch(() => undefined);
  if (!warm) return [];
  const states = [];
  try {
    for (const key of (await warm.list()).sort()) {
      if (key.startsWith(".")) continue;
      const meta = await readMeta(join(warmDir, key));
      if (meta.ok) states.push({ key, dir: join(warmDir, key), meta: meta.meta });
    }
  } finally {
    await warm.close();
  }
  return states;
}

/** A state directory's meta file, read through SharedDir (no link followed, no FIFO waited on, bounded). */
async function readMeta(dir: string): Promise<{ ok: true; meta: WarmMeta } | { ok: false; reason: string }> {
  let d: SharedDir;
  try {
    d = await SharedDir.open(dir);
  } catch (err) {
    return { ok: false, reason: (err as SharedEntryError).code === "ENOENT" ? "missing" : (err as Error).message };
  }
  try {
    const meta = await d.readJson(WARM_FILES.meta, WarmMetaSchema, MAX_META_BYTES);
    return meta ? { ok: true, meta } : { ok: false, reason: "missing" };
  } catch (err) {
    return { ok: false, reason: `${(err as Error).message}: not a dinv warm-state meta file` };
  } finally {
    await d.close();
  }
}

/** sha256 and length of what a stream yields. */
async function hashStream(stream: AsyncIterable<unknown>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** sha256 of an open, checked file, reading at most one byte past `bytes` (a file that grew is caught). */
export const hashShared = (file: SharedFile, bytes: number, signal?: AbortSignal) =>
  hashStream(file.handle.createReadStream({ start: 0, end: bytes, autoClose: false, highWaterMark: 1 << 20, ...(signal ? { signal } : {}) }));

/** sha256 of a file of the launcher's own, hex. */
export const hashFile = (path: string, signal?: AbortSignal) => hashStream(createReadStream(path, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) }));

/**
 * Copy a file (a path of the launcher's own, or a checked SharedFile), hashing what was read, to `to`:
 * written under a random name beside it and linked into place only when whole and, with `expected`,
 * matching; never over an existing file. On any failure nothing of the copy stays.
 */
export async function copyVerified(from: string | SharedFile, to: string, expected?: { sha256: string; bytes: number }): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const tee = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const source =
    typeof from === "string"
      ? createReadStream(from, { highWaterMark: 1 << 20 })
      : from.handle.createReadStream({ start: 0, ...(expected ? { end: expected.bytes } : {}), autoClose: false, highWaterMark: 1 << 20 });
  const tmp = join(dirname(to), `.${basename(to)}.${randomBytes(9).toString("hex")}.tmp`);
  try {
    await pipeline(source, tee, createWriteStream(tmp, { flags: "wx", mode: 0o600 }));
    const got = { sha256: hash.digest("hex"), bytes };
    if (expected && (got.sha256 !== expected.sha256 || got.bytes !== expected.bytes)) {
      const shown = typeof from === "string" ? from : "the saved docker disk";
      throw new Error(`${shown} does not match its meta file (sha256 ${got.sha256.slice(0, 12)}…, ${got.bytes} bytes; expected ${expected.sha256.slice(0, 12)}…, ${expected.bytes} bytes)`);
    }
    // link(): fails with EEXIST rather than replace whatever is at `to`.
    await link(tmp, to);
    return got;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** A fresh directory to save into, beside the states (same filesystem, so the final rename is atomic). */
export const newSaveDir = (warmDir: string) => mkdtemp(join(warmDir, ".saving-"));

/**
 * Put a finished save in place under its shape's name. Another launcher may have saved the same shape
 * meanwhile: its state stays, this one is dropped (both are equally good).
 */
export async function commitState(warmDir: string, saveDir: string, meta: WarmMeta): Promise<{ dir: string; kept: boolean }> {
  const d = await SharedDir.open(saveDir);
  await d.writeAtomic(WARM_FILES.meta, `${JSON.stringify(meta, null, 2)}\n`, 0o600).finally(() => d.close());
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
