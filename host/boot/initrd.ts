// The initramfs QEMU boots: the shipped one, plus (for an early start of dockerd) the launcher's
// boot files appended as a second cpio archive, written into the run directory. The shipped
// file is never modified.

import { copyFile, appendFile, chmod, rm } from "node:fs/promises";
import { join } from "node:path";
import type { GuestConfig } from "../../shared/protocol/guest-config.js";
import type { Logger } from "../log.js";
import { RUN_FILES } from "../run/run-files.js";
import { cpioNewc, earlyBootFiles } from "./early-boot.js";

/** Path of the initramfs to boot. */
export async function bootInitrd(shipped: string, runDir: string, guest: GuestConfig, enabled: boolean, log: Logger): Promise<string> {
  const target = join(runDir, RUN_FILES.bootInitrd);
  await rm(target, { force: true });
  const early = enabled ? earlyBootFiles(guest) : { reason: "DINV_EARLY_START=off" };
  if ("reason" in early) {
    log.info(`dockerd starts once the agent is up: ${early.reason}`);
    return shipped;
  }
  await copyFile(shipped, target);
  // It may carry dockerd's TLS key: readable by the launcher's user only.
  await chmod(target, 0o600);
  await appendFile(target, cpioNewc(early.files));
  log.debug("dockerd starts from the guest init (early start), before the agent is up");
  return target;
}
