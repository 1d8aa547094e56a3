// One launcher per DINV_RUN_DIR, and no QEMU left behind by a launcher that was killed: a
// second QEMU on the same disk images would corrupt them.

import { readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.js";
import { qmpCommand } from "../qemu/qmp.js";
import { RUN_FILES } from "./run-files.js";

export type PidState = "none" | "stale" | "live";

/** What a pid file points at: nothing, a dead or foreign process (stale), or ours (live). Pure. */
export function classifyPid(pid: number | undefined, cmdline: string | undefined, marker: string): PidState {
  if (!pid || !Number.isInteger(pid) || pid <= 0) return "none";
  if (cmdline === undefined) return "stale";
  return cmdline.includes(marker) ? "live" : "stale";
}

export class RunDirBusy extends Error {}

async function pidFrom(path: string): Promise<number | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  return text === undefined ? undefined : Number(text.trim());
}

async function cmdlineOf(pid: number | undefined): Promise<string | undefined> {
  if (!pid) return undefined;
  return readFile(`/proc/${pid}/cmdline`, "utf8").then((t) => t.replace(/\0/g, " "), () => undefined);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Claim the run directory: refuse if another live launcher holds it; stop a QEMU orphaned by a
 * killed launcher (QMP quit flushes its disk caches; SIGKILL if it does not answer).
 */
export async function claimRunDir(runDir: string, log: Logger): Promise<{ release: () => Promise<void> }> {
  const launcherPidFile = join(runDir, RUN_FILES.launcherPid);
  const other = await pidFrom(launcherPidFile);
  if (other !== process.pid && classifyPid(other, await cmdlineOf(other), "dinv") === "live") {
    throw new RunDirBusy(`another dinv launcher (pid ${other}) runs with DINV_RUN_DIR=${runDir}; stop it first (dinv stop), or give this one its own DINV_RUN_DIR`);
  }
  await writeFile(launcherPidFile, `${process.pid}\n`);

  // The run's QEMU, and a warm template QEMU (which never runs its guest) a killed launcher left.
  for (const [pidName, qmpName] of [[RUN_FILES.qemuPid, RUN_FILES.qmpSocket], [RUN_FILES.templatePid, RUN_FILES.templateQmpSocket]] as const) {
    const qemuPidFile = join(runDir, pidName);
    const qemuPid = await pidFrom(qemuPidFile);
    const qmpSocket = join(runDir, qmpName);
    if (classifyPid(qemuPid, await cmdlineOf(qemuPid), qmpSocket) === "live") {
      log.warn({ pid: qemuPid }, "a QEMU of a previous launcher is still running (the launcher was killed); stopping it before booting");
      await qmpCommand(qmpSocket, "quit").catch(() => undefined);
      const deadline = Date.now() + 10_000;
      while (alive(qemuPid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive(qemuPid!)) process.kill(qemuPid!, "SIGKILL");
      while (alive(qemuPid!)) await new Promise((r) => setTimeout(r, 50));
    }
    await unlink(qemuPidFile).catch(() => undefined);
  }
  return { release: () => unlink(launcherPidFile).catch(() => undefined) };
}
