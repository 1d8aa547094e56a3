// A directory another container may write (a warm or cache volume, the TLS client directory): the
// one way the launcher touches one. The directory is opened once (O_DIRECTORY|O_NOFOLLOW) and every
// entry is reached through that descriptor (/proc/self/fd/N/NAME: the directory cannot be swapped
// under it, and O_NOFOLLOW applies to NAME), so no symlink planted in it is ever followed. Files
// are opened O_NONBLOCK (a FIFO cannot hang the open), checked on the descriptor (a regular file,
// owned by the launcher's user, within a size limit) and used through it. New files are created
// O_EXCL under unpredictable names and renamed into place; a failed write removes what it made.

import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { lstat, mkdir, open, readdir, rename, rmdir, unlink, type FileHandle } from "node:fs/promises";
import type { z } from "zod";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

/** An entry of a shared directory that the launcher will not use; the message names the path and why. */
export class SharedEntryError extends Error {
  constructor(
    readonly path: string,
    reason: string,
    /** the errno code behind it, when there is one (ENOENT: absent) */
    readonly code?: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** Names the launcher reads or writes in a shared directory: one component, neither "." nor "..". */
const NAME = /^(?!\.\.?$)[A-Za-z0-9._-]{1,200}$/;

export interface FileLimits {
  /** largest size accepted, bytes */
  maxBytes: number;
  /** exact size expected, bytes (e.g. from a meta file) */
  bytes?: number;
  /** whether the file must be owned by the launcher's user (default true: another user's file is planted) */
  ownOnly?: boolean;
}

/** What is wrong with a file for these limits, or undefined. Pure. */
export function fileRefusal(st: Pick<Stats, "isFile" | "size" | "uid">, limits: FileLimits, uid: number | undefined): string | undefined {
  if (!st.isFile()) return "not a regular file";
  if ((limits.ownOnly ?? true) && uid !== undefined && st.uid !== uid) return `owned by uid ${st.uid}, not by the launcher's ${uid}`;
  if (st.size > limits.maxBytes) return `${st.size} bytes, more than the ${limits.maxBytes} allowed`;
  if (limits.bytes !== undefined && st.size !== limits.bytes) return `${st.size} bytes, expected ${limits.bytes}`;
  return undefined;
}

/** An open, checked file of a shared directory. */
export interface SharedFile {
  handle: FileHandle;
  /** its size when checked, bytes */
  size: number;
  /** a path that reopens this very file, for another process (QEMU) while the handle is open */
  procPath: string;
}

export class SharedDir {
  private constructor(
    /** the directory's path as configured (for messages) */
    readonly path: string,
    private readonly dir: FileHandle,
  ) {}

  /** Open a directory (its own last component must not be a symlink); create it first with `create`. */
  static async open(path: string, options: { create?: boolean; mode?: number } = {}): Promise<SharedDir> {
    if (options.create) await mkdir(path, { recursive: true, mode: options.mode ?? 0o700 });
    try {
      return new SharedDir(path, await open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    } catch (err) {
      throw new SharedEntryError(path, describe(err, "directory"), (err as NodeJS.ErrnoException).code);
    }
  }

  /** The path of an entry, resolved through this directory's descriptor. */
  entry(name: string): string {
    if (!NAME.test(name)) throw new SharedEntryError(`${this.path}/${name}`, "not a plain file name");
    return `/proc/self/fd/${this.dir.fd}/${name}`;
  }

  /** `${path}/${name}`, for messages. */
  shown(name: string): string {
    return `${this.path}/${name}`;
  }

  /** Open an existing file for reading and check it on its descriptor; undefined when absent. */
  async openFile(name: string, limits: FileLimits): Promise<SharedFile | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.entry(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new SharedEntryError(this.shown(name), describe(err, "file"));
    }
    const st = await handle.stat();
    const refusal = fileRefusal(st, limits, process.getuid?.());
    if (refusal) {
      await handle.close();
      throw new SharedEntryError(this.shown(name), refusal);
    }
    return { handle, size: st.size, procPath: `/proc/${process.pid}/fd/${handle.fd}` };
  }

  /** A small file's text, read through its checked descriptor; undefined when absent. */
  async readText(name: string, maxBytes: number, ownOnly = true): Promise<string | undefined> {
    const file = await this.openFile(name, { maxBytes, ownOnly });
    if (!file) return undefined;
    try {
      const buf = Buffer.alloc(file.size);
      const { bytesRead } = await file.handle.read(buf, 0, file.size, 0);
      return buf.subarray(0, bytesRead).toString("utf8");
    } finally {
      await file.handle.close();
    }
  }

  /** A small JSON file parsed with a schema: the value, undefined when absent, or a SharedEntryError. */
  async readJson<T>(name: string, schema: z.ZodType<T>, maxBytes: number): Promise<T | undefined> {
    const text = await this.readText(name, maxBytes);
    if (text === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new SharedEntryError(this.shown(name), `not JSON (${(err as Error).message})`);
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new SharedEntryError(this.shown(name), `not what it should be (${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message})`);
    return parsed.data;
  }

  /** A new file under an unpredictable name (O_EXCL: never an existing entry); commit() renames it into place. */
  async create(final: string, mode = 0o600): Promise<{ handle: FileHandle; name: string }> {
    const name = `.${final}.${randomBytes(12).toString("hex")}.tmp`;
    this.entry(final);
    const handle = await open(this.entry(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    return { handle, name };
  }

  /** Rename a file made by create() over `final` (an entry there, even a symlink, is replaced, not followed). */
  async commit(name: string, final: string): Promise<void> {
    await rename(this.entry(name), this.entry(final));
  }

  /** Write a whole file by create, write, sync and commit; on failure nothing of it stays. */
  async writeAtomic(final: string, data: string | Buffer, mode = 0o600): Promise<void> {
    await this.fill(final, mode, async (handle) => {
      await handle.writeFile(data);
    });
  }

  /** create(), let `write` fill the handle, sync, commit; on failure the temporary file is removed. */
  async fill(final: string, mode: number, write: (handle: FileHandle) => Promise<void>): Promise<void> {
    const { handle, name } = await this.create(final, mode);
    try {
      await write(handle);
      await handle.sync();
      await handle.close();
      await this.commit(name, final);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await this.remove(name);
      throw err;
    }
  }

  /** A subdirectory, created if asked (mode only for a new one); never through a symlink. */
  async subdir(name: string, options: { create?: boolean; mode?: number } = {}): Promise<SharedDir> {
    if (options.create) {
      await mkdir(this.entry(name), { mode: options.mode ?? 0o700 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "EEXIST") throw err;
      });
    }
    try {
      return new SharedDir(this.shown(name), await open(this.entry(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    } catch (err) {
      throw new SharedEntryError(this.shown(name), describe(err, "directory"), (err as NodeJS.ErrnoException).code);
    }
  }

  /** A new subdirectory under an unpredictable name beginning with `prefix`. */
  async makeTempDir(prefix: string): Promise<{ dir: SharedDir; name: string }> {
    const name = `${prefix}${randomBytes(9).toString("hex")}`;
    await mkdir(this.entry(name), { mode: 0o700 });
    return { dir: await this.subdir(name), name };
  }

  /** Remove an entry (a file, or a symlink itself); absent is fine. */
  async remove(name: string): Promise<void> {
    await unlink(this.entry(name)).catch(() => undefined);
  }

  /** Remove an empty subdirectory; absent or not empty is fine. */
  async removeDir(name: string): Promise<void> {
    await rmdir(this.entry(name)).catch(() => undefined);
  }

  /** Rename an entry into another shared directory (same filesystem); a directory never replaces a non-empty one. */
  async renameTo(from: string, target: SharedDir, to: string): Promise<void> {
    await rename(this.entry(from), target.entry(to));
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(this.entry(from), this.entry(to));
  }

  /** An entry's own status (a symlink is not followed); undefined when absent. */
  async stat(name: string): Promise<Stats | undefined> {
    return lstat(this.entry(name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
  }

  /** Make the directory's entries (a rename into it) durable. */
  async sync(): Promise<void> {
    await this.dir.sync().catch(() => undefined);
  }

  /** The path another process (qemu-img, QEMU) reaches an entry by, while this directory is open. */
  procEntry(name: string): string {
    this.entry(name);
    return `/proc/${process.pid}/fd/${this.dir.fd}/${name}`;
  }

  async list(): Promise<string[]> {
    return readdir(`/proc/self/fd/${this.dir.fd}`);
  }

  async close(): Promise<void> {
    await this.dir.close().catch(() => undefined);
  }
}

function describe(err: unknown, what: "file" | "directory"): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ELOOP") return "a symbolic link, which dinv does not follow here";
  // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR.
  if (code === "ENOTDIR") return what === "directory" ? "not a directory (a symbolic link is not followed here)" : "not a file";
  if (code === "ENXIO") return "a FIFO or socket with nothing behind it";
  return (err as Error).message;
}
