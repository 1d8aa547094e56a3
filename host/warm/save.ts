// Saving a warm state from a VM that just became ready on a docker disk created this run, before
// anything outside the VM could reach its docker API (the launcher withholds that forward).

import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { WarmShape } from "./shape.js";
import { saveVm } from "./migrate.js";
import type { Logger } from "../log.js";
import { writeTemplate } from "./template.js";
import { commitState, copyVerified, discardSave, hashFile, newSaveDir, WARM_FILES, type WarmMeta } from "./store.js";

export interface SaveOptions {
  qmpSocket: string;
  dockerDisk: string;
  warmDir: string;
  shape: WarmShape;
  /** the QEMU takes a file: migration URI */
  fileMigration: boolean;
  dockerVersion?: string;
  /** QEMU 8.2 and later: the state is also written as a template, a RAM file every restore maps privately */
  template?: { qemuBinary: string; qmpSocket: string; argsFor: (ramPath: string) => string[]; ramBytes: number; log: Logger };
  signal: AbortSignal;
}

export type SaveResult =
  | { ok: true; dir: string; kept: boolean; pauseMs: number; stateBytes: number; diskBytes: number; /** "mapped", or why restores read the stream */ mapped: string }
  | { ok: false; reason: string };

export async function saveWarmState(o: SaveOptions): Promise<SaveResult> {
  let saveDir: string;
  try {
    saveDir = await newSaveDir(o.warmDir);
  } catch (err) {
    return { ok: false, reason: `cannot write in DINV_WARM_DIR ${o.warmDir}: ${(err as Error).message}` };
  }
  try {
    const statePath = join(saveDir, WARM_FILES.state);
    let disk = { sha256: "", bytes: 0 };
    const { pauseMs } = await saveVm(o.qmpSocket, statePath, o.fileMigration, async () => {
      // The disk as it is at the instant of the state (QEMU flushed it when the migration completed).
      disk = await copyVerified(o.dockerDisk, join(saveDir, WARM_FILES.disk));
    }, o.signal);
    const state = await hashFile(statePath, o.signal);
    let mapped: WarmMeta["mapped"];
    let mappedSaid = "restores read the stream (QEMU before 8.2 cannot map a RAM file privately)";
    if (o.template) {
      const t = o.template;
      // After the user's VM runs on: the template is a second QEMU that only loads and saves.
      mapped = await writeTemplate({ qemuBinary: t.qemuBinary, args: t.argsFor(join(saveDir, WARM_FILES.ram)), qmpSocket: t.qmpSocket, statePath, ramPath: join(saveDir, WARM_FILES.ram), devicesPath: join(saveDir, WARM_FILES.devices), ramBytes: t.ramBytes, log: t.log, signal: o.signal }).catch(async (err: Error) => {
        for (const file of [WARM_FILES.ram, WARM_FILES.devices]) await rm(join(saveDir, file), { force: true });
        mappedSaid = `restores read the stream: the RAM file was not written: ${err.message}`;
        return undefined;
      });
      if (mapped) mappedSaid = "mapped";
    }
    const meta: WarmMeta = {
      format: 1,
      shape: o.shape,
      savedAt: new Date().toISOString(),
      state,
      disk,
      pauseMs,
      ...(mapped ? { mapped } : {}),
      ...(o.dockerVersion ? { dockerVersion: o.dockerVersion.slice(0, 64) } : {}),
    };
    const { dir, kept } = await commitState(o.warmDir, saveDir, meta);
    return { ok: true, dir, kept, pauseMs, stateBytes: state.bytes, diskBytes: disk.bytes, mapped: mappedSaid };
  } catch (err) {
    await discardSave(saveDir);
    return { ok: false, reason: (err as Error).message };
  }
}
