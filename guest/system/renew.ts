// Making a restored guest its own: the same RAM image runs in every copy restored from one state,
// so the kernel's random pool, the clock and every id derived from them would be shared.
// node:child_process directly (not execa): this runs before anything else after a restore.

import { spawnSync } from "node:child_process";
import { openSync, readSync, closeSync, writeFileSync } from "node:fs";

/** The helper that credits the entropy and reseeds the kernel CRNG at once (alpine/tools/reseed.c). */
export const RESEED_HELPER = "/usr/lib/dinv/dinv-reseed";

/** 16 bytes of the (reseeded) kernel pool; never Node's own generator, whose state was restored too. */
function kernelRandom(bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  const fd = openSync("/dev/urandom", "r");
  try {
    readSync(fd, buf, 0, bytes, null);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** A random (version 4) UUID from raw bytes. Pure. */
export function uuidFrom(bytes: Buffer): string {
  const b = Buffer.from(bytes.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function reseedKernel(entropy: Buffer): void {
  const r = spawnSync(RESEED_HELPER, [], { input: entropy, timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${RESEED_HELPER} failed (${r.status ?? r.signal ?? r.error?.message}): ${String(r.stderr ?? "").trim()}`);
}

/** Set the wall clock (CLOCK_REALTIME) to the host's. */
export function setClock(unixTimeMs: number): void {
  const r = spawnSync("date", ["-u", "-s", `@${(unixTimeMs / 1000).toFixed(3)}`], { timeout: 10_000 });
  if (r.status !== 0) throw new Error(`date -s failed (${r.status ?? r.signal}): ${String(r.stderr ?? "").trim()}`);
}

/** A new /etc/machine-id (32 hex digits), from the reseeded pool. */
export function writeMachineId(): string {
  const id = kernelRandom(16).toString("hex");
  writeFileSync("/etc/machine-id", `${id}\n`, { mode: 0o444 });
  return id;
}

export const newBootId = () => uuidFrom(kernelRandom(16));
