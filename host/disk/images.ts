// Disk images on the launcher side: created sparse when absent, grown when asked, never
// replaced or shrunk. The decision is pure (planDisk); the shell runs qemu-img.

import { open } from "node:fs/promises";
import { execa } from "execa";
import { z } from "zod";
import { formatSize } from "../config/size.js";
import { exists } from "../fs/exists.js";

/** The part of `qemu-img info --output=json` we rely on (a file from outside: parsed). */
export const ImageInfoSchema = z.object({
  format: z.string(),
  "virtual-size": z.number().int().nonnegative(),
});
export type ImageInfo = z.infer<typeof ImageInfoSchema>;

/**
 * What a qcow2 header says that dinv must refuse, read before qemu-img or QEMU opens the file: a
 * backing file or an external data file would make QEMU read or write another file of the
 * launcher's side that a planted image names. Undefined when the header is plain. Pure.
 */
export function qcow2Refusal(header: Buffer): string | undefined {
  if (header.length < 72 || header.readUInt32BE(0) !== 0x514649fb) return undefined; // not qcow2: qemu-img info tells
  const version = header.readUInt32BE(4);
  if (header.readBigUInt64BE(8) !== 0n) return "names a backing file; dinv uses only self-contained images";
  if (header.readUInt32BE(32) !== 0) return "is encrypted; dinv uses only plain images";
  if (version >= 3 && header.length >= 80 && (header.readBigUInt64BE(72) & 0b100n) !== 0n) return "keeps its data in an external file; dinv uses only self-contained images";
  return undefined;
}

export type DiskPlan =
  | { action: "create"; sizeBytes: number }
  | { action: "keep" }
  | { action: "grow"; fromBytes: number; toBytes: number }
  | { action: "keep-larger"; currentBytes: number; askedBytes: number }
  | { action: "refuse"; reason: string };

export function planDisk(info: ImageInfo | undefined, askedBytes: number): DiskPlan {
  if (!info) return { action: "create", sizeBytes: askedBytes };
  if (info.format !== "qcow2") {
    return { action: "refuse", reason: `is a ${info.format} image, not qcow2; dinv leaves it untouched (move it aside to start fresh)` };
  }
  const current = info["virtual-size"];
  if (current === askedBytes) return { action: "keep" };
  if (current < askedBytes) return { action: "grow", fromBytes: current, toBytes: askedBytes };
  return { action: "keep-larger", currentBytes: current, askedBytes };
}

export class DiskError extends Error {}

/** `qemu-img info` of an image, parsed; -U: read even while a QEMU holds it (we only read). DiskError when unreadable. */
export async function imageInfo(path: string, shown = path): Promise<ImageInfo> {
  const result = await execa("qemu-img", ["info", "-U", "--output=json", path], { reject: false });
  if (result.exitCode !== 0) throw new DiskError(`${shown} is not a readable disk image: ${String(result.stderr).trim()}`);
  const parsed = ImageInfoSchema.safeParse(JSON.parse(String(result.stdout)));
  if (!parsed.success) throw new DiskError(`${shown}: qemu-img info gave an unexpected answer`);
  return parsed.data;
}

/** `qemu-img map --output=json`: the image's extents (a file from outside: parsed). */
const MapSchema = z.array(z.object({ data: z.boolean() }));

/** Whether an image's map shows no data written anywhere: a disk that never held anything. Pure. */
export function neverWritten(mapJson: string): boolean {
  try {
    const parsed = MapSchema.safeParse(JSON.parse(mapJson));
    return parsed.success && parsed.data.every((extent) => !extent.data);
  } catch {
    return false;
  }
}

/**
 * Make sure a qcow2 image exists at path with at least sizeBytes; returns what was done, and
 * whether the guest may format it when it reads as blank: created now, or never written.
 */
export async function ensureDisk(path: string, sizeBytes: number, variable: string): Promise<{ level: "info" | "warn"; message: string; mayFormat: boolean }> {
  const { message, created } = await ensure(path, sizeBytes, variable);
  let mayFormat = created;
  if (!created) {
    const map = await execa("qemu-img", ["map", "-U", "--output=json", path], { reject: false });
    mayFormat = map.exitCode === 0 && neverWritten(String(map.stdout));
  }
  return { level: message.includes("never shrinks") ? "warn" : "info", message, mayFormat };
}

/** What an existing image's qcow2 header says that dinv refuses (read before any other tool opens it). */
export async function diskHeaderRefusal(path: string): Promise<string | undefined> {
  const handle = await open(path, "r");
  const header = Buffer.alloc(104);
  try {
    await handle.read(header, 0, header.length, 0);
  } finally {
    await handle.close();
  }
  return qcow2Refusal(header);
}

async function ensure(path: string, sizeBytes: number, variable: string): Promise<{ message: string; created: boolean }> {
  const present = await exists(path);
  let info: ImageInfo | undefined;
  if (present) {
    const refusal = await diskHeaderRefusal(path);
    if (refusal) throw new DiskError(`${path} ${refusal}; it was left untouched (move it aside to start fresh)`);
    // -U: read the header even if a stale QEMU still holds the lock (we only read).
    info = await imageInfo(path);
  }
  const plan = planDisk(info, sizeBytes);
  switch (plan.action) {
    case "create":
      await execa("qemu-img", ["create", "-q", "-f", "qcow2", path, String(plan.sizeBytes)]);
      return { message: `created ${path} (${formatSize(plan.sizeBytes)}, sparse)`, created: true };
    case "keep":
      return { message: `using ${path}`, created: false };
    case "grow":
      await execa("qemu-img", ["resize", "-q", path, String(plan.toBytes)]);
      return { message: `grew ${path} from ${formatSize(plan.fromBytes)} to ${formatSize(plan.toBytes)}`, created: false };
    case "keep-larger":
      return { message: `using ${path} at ${formatSize(plan.currentBytes)}: ${variable}=${formatSize(plan.askedBytes)} is smaller, and dinv never shrinks a disk`, created: false };
    case "refuse":
      throw new DiskError(`${path} ${plan.reason}`);
  }
}
