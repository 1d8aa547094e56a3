// A full disk on the launcher's side: QEMU pauses the VM when a write to a disk image fails with
// ENOSPC (werror=enospc) and says so in a BLOCK_IO_ERROR event. The launcher reports it as what it
// is, and resumes the VM by itself once there is room again, so nothing the guest wrote is lost.

import { statfs } from "node:fs/promises";
import type { Logger } from "../log.js";
import type { QmpEvent } from "../qemu/events.js";

/** Free space below which a paused VM stays paused, bytes. */
export const RESUME_FREE_BYTES = 256 * 2 ** 20;

export interface DiskSpaceHooks {
  /** set or clear the host error shown by `dinv status` */
  report(error: { message: string; hint: string } | undefined): void;
  /** resume the VM (QMP cont) */
  resume(): void;
  /** free bytes where the disk images live */
  freeBytes(): Promise<number>;
}

export class DiskSpaceWatch {
  private pausedByDisk = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly hooks: DiskSpaceHooks,
    private readonly log: Logger,
    private readonly checkEveryMs = 5000,
  ) {}

  /** whether the VM is paused for a full disk (the agent is then silent, and that is no fault of its own) */
  get paused(): boolean {
    return this.pausedByDisk;
  }

  onEvent(event: QmpEvent): void {
    if (event.event === "BLOCK_IO_ERROR" && event.data?.nospace === true && !this.pausedByDisk) {
      this.pausedByDisk = true;
      // -blockdev disks are named by their node (the event's device is then empty).
      const name = [event.data.device, event.data["node-name"]].find((n) => typeof n === "string" && n !== "");
      const device = typeof name === "string" ? name : "a disk";
      this.log.error(`host disk full: QEMU could not write ${device} (no space left on the launcher's side); the VM is paused until there is room`);
      this.hooks.report({
        message: `the launcher's disk is full: writes to ${device} failed and the VM is paused (nothing is lost)`,
        hint: "free space where DINV_DOCKER_DIR / DINV_VOLUME_DIR live; dinv resumes the VM by itself",
      });
      this.schedule();
    } else if (event.event === "RESUME" && this.pausedByDisk) {
      this.pausedByDisk = false;
      clearTimeout(this.timer);
      this.hooks.report(undefined);
      this.log.info("the VM runs again");
    }
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private schedule(): void {
    this.timer = setTimeout(async () => {
      if (!this.pausedByDisk) return;
      const free = await this.hooks.freeBytes().catch(() => 0);
      if (free >= RESUME_FREE_BYTES) {
        this.log.info(`${Math.round(free / 2 ** 20)} MiB free on the launcher's side again: resuming the VM`);
        this.hooks.resume();
      }
      this.schedule();
    }, this.checkEveryMs);
    this.timer.unref?.();
  }
}

/** Free bytes of the filesystem holding `path`. */
export async function freeBytesAt(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}
