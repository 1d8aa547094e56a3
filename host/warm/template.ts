// A saved state as a template (QEMU's docs/system/vm-templating.rst): a second QEMU, which never
// runs the guest, loads the saved stream into RAM on a shared file, then saves only its device
// state (x-ignore-shared). Every later restore maps that RAM file privately: the pages no instance
// wrote stay one copy in the host's page cache. The run's own VM is not touched.

import { open, stat } from "node:fs/promises";
import type { Logger } from "../log.js";
import { qmpCommand } from "../qemu/qmp.js";
import { startQemu, untilExit } from "../qemu/process.js";
import { waitMigration, waitQmp } from "./migrate.js";
import { hashFile, type FileIdentity } from "./store.js";

export interface TemplateOptions {
  qemuBinary: string;
  /** the template QEMU's arguments (buildQemuArgs with `template`), its QMP socket among them */
  args: string[];
  qmpSocket: string;
  /** the saved stream, read by the template */
  statePath: string;
  /** the RAM file to write; created here, empty */
  ramPath: string;
  /** the device state to write */
  devicesPath: string;
  /** the guest's RAM, bytes: the RAM file's size */
  ramBytes: number;
  log: Logger;
  signal: AbortSignal;
}

export interface TemplateRecord {
  ram: { sha256: string; bytes: number; identity: FileIdentity };
  devices: { sha256: string; bytes: number };
}

/** Enable or clear x-ignore-shared: shared RAM blocks are left out of the stream (both sides must agree). */
export const ignoreShared = (qmpSocket: string, state: boolean) =>
  qmpCommand(qmpSocket, "migrate-set-capabilities", { arguments: { capabilities: [{ capability: "x-ignore-shared", state }] } });

/** The identity of a file as its stat (bigint) shows it. Pure. */
export const identityOf = (st: { ino: bigint; mtimeNs: bigint; ctimeNs: bigint }): FileIdentity => ({
  ino: String(st.ino),
  mtimeNs: String(st.mtimeNs),
  ctimeNs: String(st.ctimeNs),
});

/** Write the RAM file and the device state from a saved stream; throws why not. */
export async function writeTemplate(o: TemplateOptions): Promise<TemplateRecord> {
  // The launcher's own new file, of the RAM's size (sparse: pages the guest never wrote stay holes).
  const ram = await open(o.ramPath, "wx", 0o600);
  try {
    await ram.truncate(o.ramBytes);
  } finally {
    await ram.close();
  }
  const stderr: string[] = [];
  const qemu = startQemu(o.qemuBinary, o.args, () => undefined, (line) => stderr.length < 20 && stderr.push(line));
  const step = untilExit(qemu, (e) => `the template QEMU exited (${e.exitCode ?? e.signal}): ${stderr.join(" | ").slice(0, 600)}`);
  try {
    await step(waitQmp(o.qmpSocket, o.signal));
    // The stream was saved without x-ignore-shared: it is loaded with it off, every page into the file.
    await step(qmpCommand(o.qmpSocket, "migrate-incoming", { arguments: { uri: `file:${o.statePath}` } }));
    await step(waitMigration(o.qmpSocket, o.signal));
    // The saved VM was paused, so this one is too: its device state now, without the shared RAM.
    await step(ignoreShared(o.qmpSocket, true));
    await step(qmpCommand(o.qmpSocket, "migrate", { arguments: { uri: `file:${o.devicesPath}` } }));
    await step(waitMigration(o.qmpSocket, o.signal));
    // Its exit is the expected end now (outside step): quit, and a kill after 10 s if it hangs.
    await qmpCommand(o.qmpSocket, "quit").catch(() => undefined);
    await Promise.race([qemu.exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
  } finally {
    qemu.kill("SIGKILL");
    await qemu.exited;
  }
  // Durable before the meta file names it: QEMU wrote it through a shared mapping.
  const synced = await open(o.ramPath, "r");
  try {
    await synced.sync();
  } finally {
    await synced.close();
  }
  const st = await stat(o.ramPath, { bigint: true });
  if (Number(st.size) !== o.ramBytes) throw new Error(`the RAM file has ${st.size} bytes, the guest ${o.ramBytes}`);
  const ramDigest = await hashFile(o.ramPath, o.signal);
  const devices = await hashFile(o.devicesPath, o.signal);
  // Hashing reads the file: its identity is taken after, so nothing the launcher did changes it later.
  const after = await stat(o.ramPath, { bigint: true });
  o.log.debug({ ram: ramDigest.bytes, devices: devices.bytes }, "warm template written");
  return { ram: { ...ramDigest, identity: identityOf(after) }, devices };
}
