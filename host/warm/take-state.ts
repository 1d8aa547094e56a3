// What a restore takes from a saved state before QEMU starts: its files opened on checked
// descriptors (the warm directory may be shared: no link, FIFO or device is used), the choice of
// mapping its RAM file or reading its stream, the digest check of what QEMU will read (started here,
// awaited before the restored VM runs), and the docker disk copied, digest-checked, header-checked.

import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { diskHeaderRefusal } from "../disk/images.js";
import type { SharedFile } from "../fs/shared-dir.js";
import type { QemuFeatures } from "../qemu/version.js";
import { openMapped, verifyDevices, type MappedFiles } from "./mapped.js";
import { verifyState, type WarmPlan } from "./plan.js";
import { copyVerified, openStateFiles, WARM_FILES } from "./store.js";

export type TakenState =
  | {
      ok: true;
      /** the stream, checked and open, when it is what QEMU reads */
      stateFile?: SharedFile;
      /** the RAM file and device state, checked and open, when the restore maps */
      mapped?: MappedFiles;
      /** why the stream is read rather than the RAM file mapped */
      streamWhy: string;
      /** the digest check of what QEMU reads: undefined when it matches, else why not */
      verified: Promise<string | undefined>;
    }
  | { ok: false; reason: string };

export async function takeState(plan: Extract<WarmPlan, { kind: "restore" }>, dockerDir: string, dockerDisk: string, qemu: QemuFeatures): Promise<TakenState> {
  let files: Awaited<ReturnType<typeof openStateFiles>>;
  try {
    files = await openStateFiles(plan.dir, plan.meta);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  // A state saved as a template is mapped when this QEMU can and its RAM file is the one saved.
  const mapped = await openMapped(plan.dir, plan.meta, qemu);
  let taken: Extract<TakenState, { ok: true }>;
  if ("ram" in mapped) {
    await files.state.handle.close();
    taken = { ok: true, mapped, streamWhy: "", verified: verifyDevices(mapped.devices, join(plan.dir, WARM_FILES.devices), plan.meta).catch((err: Error) => err.message) };
  } else {
    taken = { ok: true, stateFile: files.state, streamWhy: mapped.reason, verified: verifyState(files.state, join(plan.dir, WARM_FILES.state), plan.meta).catch((err: Error) => err.message) };
  }
  const shown = join(plan.dir, WARM_FILES.disk);
  let refusal: string | undefined;
  try {
    await mkdir(dockerDir, { recursive: true });
    await copyVerified(files.disk, dockerDisk, plan.meta.disk);
    const header = await diskHeaderRefusal(dockerDisk);
    if (header) {
      // The copy is this run's own: removed, and the run boots cold on a new disk.
      await rm(dockerDisk, { force: true });
      refusal = `${shown} ${header}`;
    }
  } catch (err) {
    refusal = `${shown}: ${(err as Error).message}`;
  } finally {
    await files.disk.handle.close();
  }
  if (!refusal) return taken;
  await taken.verified;
  for (const f of [taken.stateFile, taken.mapped?.ram, taken.mapped?.devices]) await f?.handle.close();
  return { ok: false, reason: refusal };
}
