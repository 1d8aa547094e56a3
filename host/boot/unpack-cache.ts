// A file the launcher makes from a shipped compressed one (the kernel, the root image), kept in the
// warm-start directory for later runs where there is one. The cached copy is named after the shipped
// file's size and modification time and appears by one rename, so a name that exists is complete.

import { copyFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/** A shipped boot file that cannot be made into what QEMU boots; the message says why. */
export class BootFileError extends Error {}

export interface UnpackCache {
  /** the shipped compressed file */
  source: string;
  /** where this run unpacks it when no cached copy serves */
  target: string;
  /** the warm-start directory (as trusted as the states in it), when warm starts are on and it exists */
  cacheDir: string | undefined;
  /** the cached copy's name before "-SIZE-MTIME" */
  prefix: string;
  unpack: (source: string, target: string) => Promise<void>;
  /** whether a cached copy looks like what unpack makes */
  usable: (path: string) => Promise<boolean>;
}

/** The cached copy's name for a shipped file of this size and mtime. Pure. */
export const cachedName = (prefix: string, size: number, mtimeMs: number) => `${prefix}-${size}-${Math.round(mtimeMs)}`;

/** The path of the unpacked file: the cached copy, or a fresh unpacking (then left in the cache). */
export async function cachedUnpack(c: UnpackCache): Promise<string> {
  const s = await stat(c.source);
  const cached = c.cacheDir ? join(c.cacheDir, cachedName(c.prefix, s.size, s.mtimeMs)) : undefined;
  if (cached && (await c.usable(cached))) return cached;
  await c.unpack(c.source, c.target);
  if (cached) {
    const tmp = `${cached}.${process.pid}.tmp`;
    await copyFile(c.target, tmp).then(() => rename(tmp, cached), () => rm(tmp, { force: true })).catch(() => undefined);
  }
  return c.target;
}
