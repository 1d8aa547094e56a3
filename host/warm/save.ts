// Saving a warm state from a VM that just became ready on a docker disk created this run, before
// anything outside the VM could reach its docker API (the launcher withholds that forward).

import { join } from "node:path";
import type { WarmShape } from "./shape.js";
import { saveVm } from "./migrate.js";
import { commitState, copyVerified, discardSave, hashFile, newSaveDir, WARM_FILES, type WarmMeta } from "./store.js";

export interface SaveOptions {
  qmpSocket: string;
  dockerDisk: string;
  warmDir: string;
  shape: WarmShape;
  /** the QEMU takes a file: migration URI */
  fileMigration: boolean;
  dockerVersion?: string;
  signal: AbortSignal;
}

export type SaveResult = { ok: true; dir: string; kept: boolean; pauseMs: number; stateBytes: number; diskBytes: number } | { ok: false; reason: string };

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
    const meta: WarmMeta = {
      format: 1,
      shape: o.shape,
      savedAt: new Date().toISOString(),
      state,
      disk,
      pauseMs,
      ...(o.dockerVersion ? { dockerVersion: o.dockerVersion.slice(0, 64) } : {}),
    };
    const { dir, kept } = await commitState(o.warmDir, saveDir, meta);
    return { ok: true, dir, kept, pauseMs, stateBytes: state.bytes, diskBytes: disk.bytes };
  } catch (err) {
    await discardSave(saveDir);
    return { ok: false, reason: (err as Error).message };
  }
}
