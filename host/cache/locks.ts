// Which cache files a running QEMU (or qemu-img) has open, from the locks it holds: QEMU takes
// open-file-description (OFD) locks on every image it opens, a backing file included, and the
// kernel lists OFD locks in /proc/locks for every pid namespace (their pid shows as -1), so a
// runner in another container is seen too. A lock, not a guess; parsing is pure.

import { readFile } from "node:fs/promises";

/** "major:minor:inode" as /proc/locks writes it (major and minor in hex, the inode in decimal). */
export type LockId = string;

/** The files /proc/locks shows locked. Pure. */
export function lockedFiles(procLocks: string): Set<LockId> {
  const out = new Set<LockId>();
  for (const line of procLocks.split("\n")) {
    // "1: OFDLCK ADVISORY  READ -1 00:2e:1234 100 100" (a "->" line is a waiter: its lock is listed too)
    const m = /^\d+:\s+(?:->\s+)?\S+\s+\S+\s+\S+\s+-?\d+\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (m) out.add(`${parseInt(m[1]!, 16)}:${parseInt(m[2]!, 16)}:${m[3]}`);
  }
  return out;
}

/** A file's lock id from its stat's device and inode (the kernel's dev_t encoding). Pure. */
export function lockIdOf(dev: bigint, ino: bigint): LockId {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}:${ino}`;
}

/** The locks held now (an unreadable /proc/locks: every file counts as locked, so nothing is removed). */
export async function readLocks(path = "/proc/locks"): Promise<(id: LockId) => boolean> {
  try {
    const locked = lockedFiles(await readFile(path, "utf8"));
    return (id) => locked.has(id);
  } catch {
    return () => true;
  }
}
