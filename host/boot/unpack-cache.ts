// A file the launcher makes from a shipped compressed one (the kernel, the root image), kept in the
// warm-start directory for later runs where there is one. The cached copy is named after the shipped
// file's size and modification time and appears by one rename, so a name that exists is complete.
// The warm directory may be shared with other containers: it is touched only through SharedDir (no
// link followed, a random O_EXCL temporary name, the copy checked on its descriptor), and a cached copy
// is handed to QEMU as /proc/PID/fd/N of the descriptor that was checked, never by its name.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { SharedDir, type SharedFile } from "../fs/shared-dir.js";

/** A shipped boot file that cannot be made into what QEMU boots; the message says why. */
export class BootFileError extends Error {}

export interface UnpackCache {
  /** the shipped compressed file */
  source: string;
  /** where this run unpacks it when no cached copy serves */
  target: string;
  /** the warm-start directory, when warm starts are on and it exists */
  cacheDir: string | undefined;
  /** whether this run may write the cache (false for a read-only warm volume) */
  writable?: boolean;
  /** the cached copy's name before "-SIZE-MTIME" */
  prefix: string;
  /** largest cached copy accepted, bytes */
  maxBytes: number;
  unpack: (source: string, target: string) => Promise<void>;
  /** whether a cached copy looks like what unpack makes (read through the given path) */
  usable: (path: string) => Promise<boolean>;
  /** a cached copy that is there but not used, and why */
  onRefused?: (reason: string) => void;
}

/** The cached copy's name for a shipped file of this size and mtime. Pure. */
export const cachedName = (prefix: string, size: number, mtimeMs: number) => `${prefix}-${size}-${Math.round(mtimeMs)}`;

/**
 * Descriptors of cached copies QEMU reopens by /proc path: held for the launcher's lifetime (a run
 * is one process; QEMU may be started again, by a cold boot after a failed restore).
 */
const held: SharedFile[] = [];

/** The path of the unpacked file: the cached copy (as its descriptor's /proc path), or a fresh unpacking (then left in the cache). */
export async function cachedUnpack(c: UnpackCache): Promise<string> {
  const s = await stat(c.source);
  const dir = c.cacheDir ? await SharedDir.open(c.cacheDir).catch((err: Error) => (c.onRefused?.(err.message), undefined)) : undefined;
  if (!dir) {
    await c.unpack(c.source, c.target);
    return c.target;
  }
  try {
    const name = cachedName(c.prefix, s.size, s.mtimeMs);
    const cached = await dir.openFile(name, { maxBytes: c.maxBytes }).catch((err: Error) => (c.onRefused?.(err.message), undefined));
    if (cached && (await c.usable(cached.procPath))) {
      held.push(cached);
      return cached.procPath;
    }
    await cached?.handle.close();
    await c.unpack(c.source, c.target);
    if (c.writable ?? true) {
      await dir
        .fill(name, 0o600, async (handle) => {
          for await (const chunk of createReadStream(c.target, { highWaterMark: 1 << 20 })) await handle.write(chunk as Buffer);
        })
        .catch((err: Error) => c.onRefused?.(`not kept in ${c.cacheDir}: ${err.message}`));
    }
    return c.target;
  } finally {
    await dir.close();
  }
}
