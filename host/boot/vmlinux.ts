// The kernel QEMU boots. microvm boots an uncompressed vmlinux directly (PVH) and so skips the
// kernel's own decompression, which under TCG costs seconds; the image ships only the compressed
// bzImage (12 MB against 58 MB) and the launcher extracts the ELF from it at start, natively.

import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { open, readFile, rm, stat } from "node:fs/promises";
import { finished } from "node:stream/promises";
import { BootFileError, cachedUnpack } from "./unpack-cache.js";

export type Payload = { codec: "zstd" | "xz"; offset: number };

const MAGIC = { zstd: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), xz: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) };

/** Where a bzImage's compressed kernel starts and its codec (Debian 13: zstd; Debian 12: xz). Pure. */
export function bzImagePayload(image: Buffer): Payload | undefined {
  const found = (["zstd", "xz"] as const).map((codec) => ({ codec, offset: image.indexOf(MAGIC[codec]) })).filter((p) => p.offset >= 0);
  found.sort((a, b) => a.offset - b.offset);
  return found[0];
}

export class KernelError extends BootFileError {}

/** Extract the ELF kernel of `bzImage` into `target` (replaced); rejects with a reason in words. */
export async function extractVmlinux(bzImage: string, target: string): Promise<void> {
  const image = await readFile(bzImage);
  const payload = bzImagePayload(image);
  if (!payload) throw new KernelError(`${bzImage} holds no zstd or xz kernel payload`);
  await rm(target, { force: true });
  const out = createWriteStream(target, { mode: 0o600 });
  // Trailing bytes after the compressed stream make the tool complain; the ELF header tells success.
  const child = spawn(payload.codec === "zstd" ? "zstd" : "xz", payload.codec === "zstd" ? ["-dcq"] : ["-dc"], { stdio: ["pipe", "pipe", "ignore"] });
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", (err) => reject(new KernelError(`cannot run ${payload.codec} to extract the kernel (install it: apt-get install ${payload.codec === "zstd" ? "zstd" : "xz-utils"}): ${err.message}`)));
    child.on("close", () => resolve());
  });
  child.stdout.pipe(out);
  child.stdin.on("error", () => undefined);
  child.stdin.end(image.subarray(payload.offset));
  await exited;
  await finished(out);
  const handle = await open(target, "r");
  const magic = Buffer.alloc(4);
  await handle.read(magic, 0, 4, 0).finally(() => handle.close());
  if (!magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])) || (await stat(target)).size < 1 << 20) {
    throw new KernelError(`the kernel extracted from ${bzImage} is not an ELF image`);
  }
}

async function isElf(path: string): Promise<boolean> {
  const handle = await open(path, "r").catch(() => undefined);
  if (!handle) return false;
  const magic = Buffer.alloc(4);
  await handle.read(magic, 0, 4, 0).finally(() => handle.close());
  return magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

/**
 * The kernel to boot: extracted from `bzImage` into `target`, or taken from `cacheDir` (the warm-start
 * directory) where an earlier run left it.
 */
export const cachedVmlinux = (bzImage: string, target: string, cacheDir?: string, writable = true, onRefused?: (reason: string) => void): Promise<string> =>
  cachedUnpack({ source: bzImage, target, cacheDir, writable, ...(onRefused ? { onRefused } : {}), prefix: "vmlinux", maxBytes: MAX_VMLINUX_BYTES, unpack: extractVmlinux, usable: isElf });

/** Largest extracted kernel accepted from the cache, bytes (Debian's is ~60 MB). */
const MAX_VMLINUX_BYTES = 512 * 2 ** 20;
