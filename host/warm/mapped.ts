// Whether a restore maps the state's RAM file (shared by every instance restored from it) or reads
// its stream, and the mapped files opened and checked. A full digest of the RAM file at each
// restore would cost more than the stream restore it replaces: the file is taken only while it is
// the very file the save wrote (same inode, same modification and status-change times; a write, a
// copy or a replacement changes one of them), and the small device state is digest-checked.

import { join } from "node:path";
import { SharedDir, type SharedFile } from "../fs/shared-dir.js";
import type { QemuFeatures } from "../qemu/version.js";
import { identityOf } from "./template.js";
import { hashShared, WARM_FILES, type FileIdentity, type WarmMeta } from "./store.js";

/** Largest device state accepted, bytes (a few MiB in practice). */
const MAX_DEVICES_BYTES = 256 * 2 ** 20;
/** Largest RAM file accepted, bytes (the meta file names the exact size). */
const MAX_RAM_BYTES = 1024 * 2 ** 30;

export interface MappedFiles {
  ram: SharedFile;
  devices: SharedFile;
}

/** Why this state cannot be mapped by this QEMU, or undefined. Pure. */
export function mappedRefusal(meta: WarmMeta, qemu: QemuFeatures): string | undefined {
  if (!meta.mapped) return "the state has no RAM file (its save ran a QEMU before 8.2)";
  if (!qemu.fileMigration) return `QEMU ${qemu.version.major}.${qemu.version.minor} cannot map a RAM file privately (8.2 or later can)`;
  return undefined;
}

/** How a RAM file's identity differs from the saved one, or undefined. Pure. */
export function identityMismatch(saved: FileIdentity, now: FileIdentity): string | undefined {
  if (saved.ino !== now.ino) return "it is another file than the save wrote (another inode: replaced or copied)";
  if (saved.mtimeNs !== now.mtimeNs || saved.ctimeNs !== now.ctimeNs) return "it was changed after the save (its modification or change time differs)";
  return undefined;
}

/** The RAM file and the device state, open and checked; or why the restore reads the stream instead. */
export async function openMapped(dir: string, meta: WarmMeta, qemu: QemuFeatures): Promise<MappedFiles | { reason: string }> {
  const refused = mappedRefusal(meta, qemu);
  if (refused) return { reason: refused };
  const m = meta.mapped!;
  const d = await SharedDir.open(dir);
  const opened: SharedFile[] = [];
  try {
    const ram = await d.openFile(WARM_FILES.ram, { maxBytes: MAX_RAM_BYTES, bytes: m.ram.bytes });
    if (!ram) return { reason: `${join(dir, WARM_FILES.ram)} is missing` };
    opened.push(ram);
    const changed = identityMismatch(m.ram.identity, identityOf(await ram.handle.stat({ bigint: true })));
    if (changed) return { reason: `${join(dir, WARM_FILES.ram)}: ${changed}` };
    const devices = await d.openFile(WARM_FILES.devices, { maxBytes: MAX_DEVICES_BYTES, bytes: m.devices.bytes });
    if (!devices) return { reason: `${join(dir, WARM_FILES.devices)} is missing` };
    opened.length = 0;
    return { ram, devices };
  } catch (err) {
    return { reason: (err as Error).message };
  } finally {
    for (const f of opened) await f.handle.close();
    await d.close();
  }
}

/** The device state's digest against the meta file, read through the descriptor QEMU is given. */
export async function verifyDevices(file: SharedFile, shown: string, meta: WarmMeta): Promise<string | undefined> {
  const want = meta.mapped!.devices;
  const got = await hashShared(file, want.bytes);
  if (got.bytes !== want.bytes || got.sha256 !== want.sha256) return `${shown} does not match its meta file (corrupted or truncated: ${got.bytes} bytes, sha256 ${got.sha256.slice(0, 12)}…)`;
  return undefined;
}
