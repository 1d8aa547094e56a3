// The guest's root image. The image ships it as rootfs.img.zst (an uncompressed erofs at zstd's level
// 19: 96 MB instead of 380); the launcher unpacks it natively at start, while the disks are prepared,
// so the guest's vCPU reads plain blocks and decompresses nothing (under TCG that costs ~5 % of a boot).

import { spawn } from "node:child_process";
import { open, rm, stat } from "node:fs/promises";
import { BootFileError, cachedUnpack } from "./unpack-cache.js";

/** Superblock magics at byte 1024 of the filesystems alpine/build.sh makes (both little-endian). Pure. */
export function rootFsType(block: Buffer): "erofs" | "ext4" | undefined {
  if (block.length >= 4 && block.readUInt32LE(0) === 0xe0f5e1e2) return "erofs";
  if (block.length >= 58 && block.readUInt16LE(56) === 0xef53) return "ext4";
  return undefined;
}

async function superblock(path: string): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const block = Buffer.alloc(64);
    const { bytesRead } = await handle.read(block, 0, 64, 1024);
    return block.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Unpack `source` (zstd) into `target` (replaced); rejects with a reason in words. */
export async function unpackRootImage(source: string, target: string): Promise<void> {
  await rm(target, { force: true });
  // zstd checks the frame's content checksum; a 2^27-byte window is the most it takes unasked.
  const child = spawn("zstd", ["-dqf", source, "-o", target], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", (err) => reject(new BootFileError(`cannot run zstd to unpack the root image (install it: apt-get install zstd): ${err.message}`)));
    child.on("close", resolve);
  });
  if (code !== 0) {
    await rm(target, { force: true });
    throw new BootFileError(`cannot unpack the root image ${source}: ${stderr.trim() || `zstd exited with ${code}`}`);
  }
  if (!rootFsType(await superblock(target))) {
    await rm(target, { force: true });
    throw new BootFileError(`the root image unpacked from ${source} holds neither an erofs nor an ext4 filesystem`);
  }
}

async function looksUnpacked(path: string): Promise<boolean> {
  if (!(await stat(path).catch(() => undefined))?.isFile()) return false;
  return !!rootFsType(await superblock(path).catch(() => Buffer.alloc(0)));
}

/** The root image QEMU opens: unpacked from `source` into `target`, or the copy a run left in `cacheDir`. */
export const cachedRootImage = (source: string, target: string, cacheDir?: string, writable = true, onRefused?: (reason: string) => void): Promise<string> =>
  cachedUnpack({ source, target, cacheDir, writable, ...(onRefused ? { onRefused } : {}), prefix: "rootfs", maxBytes: MAX_ROOT_IMAGE_BYTES, unpack: unpackRootImage, usable: looksUnpacked });

/** Largest unpacked root image accepted from the cache, bytes (the shipped one is ~400 MB). */
const MAX_ROOT_IMAGE_BYTES = 4 * 2 ** 30;
