// Disk images on the launcher side: created sparse when absent, grown when asked, never
// replaced or shrunk. The decision is pure (planDisk); the shell runs qemu-img.

import { access } from "node:fs/promises";
import { execa } from "execa";
import { z } from "zod";
import { formatSize } from "../config/size.js";

/** The part of `qemu-img info --output=json` we rely on (a file from outside: parsed). */
export const ImageInfoSchema = z.object({
  format: z.string(),
  "virtual-size": z.number().int().nonnegative(),
});
export type ImageInfo = z.infer<typeof ImageInfoSchema>;

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

/** Make sure a qcow2 image exists at path with at least sizeBytes; returns what was done. */
export async function ensureDisk(path: string, sizeBytes: number, variable: string): Promise<{ level: "info" | "warn"; message: string }> {
  const message = await ensure(path, sizeBytes, variable);
  return { level: message.includes("never shrinks") ? "warn" : "info", message };
}

async function ensure(path: string, sizeBytes: number, variable: string): Promise<string> {
  const exists = await access(path).then(() => true, () => false);
  let info: ImageInfo | undefined;
  if (exists) {
    // -U: read the header even if a stale QEMU still holds the lock (we only read).
    const result = await execa("qemu-img", ["info", "-U", "--output=json", path], { reject: false });
    if (result.exitCode !== 0) throw new DiskError(`${path} is not a readable disk image: ${String(result.stderr).trim()}`);
    const parsed = ImageInfoSchema.safeParse(JSON.parse(String(result.stdout)));
    if (!parsed.success) throw new DiskError(`${path}: qemu-img info gave an unexpected answer`);
    info = parsed.data;
  }
  const plan = planDisk(info, sizeBytes);
  switch (plan.action) {
    case "create":
      await execa("qemu-img", ["create", "-q", "-f", "qcow2", path, String(plan.sizeBytes)]);
      return `created ${path} (${formatSize(plan.sizeBytes)}, sparse)`;
    case "keep":
      return `using ${path}`;
    case "grow":
      await execa("qemu-img", ["resize", "-q", path, String(plan.toBytes)]);
      return `grew ${path} from ${formatSize(plan.fromBytes)} to ${formatSize(plan.toBytes)}`;
    case "keep-larger":
      return `using ${path} at ${formatSize(plan.currentBytes)}: ${variable}=${formatSize(plan.askedBytes)} is smaller, and dinv never shrinks a disk`;
    case "refuse":
      throw new DiskError(`${path} ${plan.reason}`);
  }
}
