// What `dinv run` is given beyond the environment, and the exit codes it ends with.

import type { KvmProbe } from "../qemu/accel.js";
import type { Logger } from "../log.js";

/** Exit codes of `dinv run`. */
export const EXIT = { ok: 0, failed: 1, config: 2, forced: 3 } as const;

export interface LaunchOptions {
  env: Record<string, string | undefined>;
  log: Logger;
  defaultGuestDir: string;
  qemuBinary?: string;
  /** run this once dockerd is ready, then stop; its exit code becomes the launcher's */
  command?: string[];
  /** the boot watchdog's and the stop's bounds, ms (tests shorten them) */
  timings?: { consoleTimeoutMs?: number; kvmHelloTimeoutMs?: number; helloWaitMs?: number };
  /** called right before the first QEMU start (tests use it to act in that window) */
  beforeBoot?: () => Promise<void>;
  /** the /dev/kvm probe's result, when already known (tests of the accelerator's paths pass one in) */
  kvmProbe?: KvmProbe;
  /** `dinv warm save`: boot cold on a fresh docker disk, save the warm state, stop */
  warmSaveOnly?: boolean;
}
