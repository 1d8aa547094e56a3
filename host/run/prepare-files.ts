// The launcher's "preparing" phase after the configuration is accepted: the run directory claimed,
// the kernel extracted (or taken from the warm directory), the warm start planned and the disks made
// or checked. A refusal names its reason and releases what was taken.

import { chmod, mkdir, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { cachedRootImage } from "../boot/root-image.js";
import { cachedVmlinux } from "../boot/vmlinux.js";
import { DiskError, ensureDisk } from "../disk/images.js";
import type { MayFormat } from "../guest-config.js";
import type { Logger } from "../log.js";
import { CacheJob } from "../cache/job.js";
import { warmDirWritable } from "../warm/store.js";
import { WarmStart } from "../warm/warm-start.js";
import type { Prepared } from "./prepare.js";
import { claimRunDir, RunDirBusy } from "./run-dir.js";
import { dockerDiskPath, RUN_FILES, volumeDiskPath } from "./run-files.js";

export interface BootFiles {
  kernel: string;
  rootImage: string;
}

export interface PreparedFiles {
  runDir: { release: () => Promise<void> };
  /** the kernel and root image QEMU boots, once unpacked; an error if they could not be */
  boot: Promise<BootFiles | Error>;
  /** remove what was unpacked into the run directory (after QEMU, or when no QEMU runs) */
  discardUnpacked: () => Promise<void>;
  warm: WarmStart;
  mayFormat: MayFormat;
  dockerDisk: string;
  volumeDisk: string | undefined;
  /** the run's part in the shared cache (DINV_CACHE_DIR), when its docker disk comes from there */
  cache: CacheJob | undefined;
}

export async function prepareFiles(p: Prepared, log: Logger, saveOnly: { command?: string[] } | undefined): Promise<PreparedFiles | { refused: string }> {
  const { config, pre, choice } = p;
  const run = (name: string) => join(config.runDir, name);
  // Sockets, pid files, disk images and keys get owner-only modes unless set explicitly (the
  // control socket 0660, the client key for its group).
  process.umask(0o077);
  // Group-searchable, so DINV_CONTROL_GID reaches control.sock; only a directory created here.
  if (await mkdir(config.runDir, { recursive: true })) await chmod(config.runDir, 0o750);
  let runDir: PreparedFiles["runDir"];
  try {
    runDir = await claimRunDir(config.runDir, log);
  } catch (err) {
    if (!(err instanceof RunDirBusy)) throw err;
    return { refused: err.message };
  }
  // The kernel's extraction (~0.3-0.8 s) and the root image's unpacking (~0.5-0.9 s) run while the
  // disks, side services and sockets are prepared; with a warm-start directory both are done once and kept there.
  // A read-only warm volume (a job container's) is read, never written: the unpacked files then stay in the run directory.
  const warmDir = config.warm.mode === "auto" && existsSync(config.warm.dir) ? config.warm.dir : undefined;
  const writable = warmDir ? await warmDirWritable(warmDir) : false;
  const refusedCopy = (reason: string) => log.warn(`warm directory: ${reason}`);
  const boot: Promise<BootFiles | Error> = Promise.all([
    pre.guest.kernelCompressed ? cachedVmlinux(pre.guest.kernel, run(RUN_FILES.vmlinux), warmDir, writable, refusedCopy) : pre.guest.kernel,
    pre.guest.rootCompressed ? cachedRootImage(pre.guest.rootImage, run(RUN_FILES.rootImage), warmDir, writable, refusedCopy) : pre.guest.rootImage,
  ]).then(([kernel, rootImage]) => ({ kernel, rootImage }), (err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  // A warm directory's copies stay for the next run; the run directory's go with the run.
  // Only what this run unpacked into its run directory (not a file someone else keeps there).
  const discardUnpacked = async () => {
    const files = await boot;
    if (files instanceof Error) return;
    for (const made of [RUN_FILES.vmlinux, RUN_FILES.rootImage]) if (files.kernel === run(made) || files.rootImage === run(made)) await rm(run(made), { force: true });
  };
  const refuse = async (reason: string) => {
    await discardUnpacked();
    await runDir.release();
    return { refused: reason };
  };
  // A warm start: restore a saved VM when one of this shape exists and this run has no docker disk yet.
  const ownDisk = dockerDiskPath(config);
  const volumeDisk = config.volume ? volumeDiskPath(config) : undefined;
  let cache: CacheJob | undefined;
  try {
    await mkdir(config.dockerDir, { recursive: true });
    // `dinv warm save` / `dinv cache warm` with a cache: a state on the key's generation, and never a promotion.
    cache = await CacheJob.prepare(saveOnly && config.cache ? { ...config, cache: { ...config.cache, save: "off" } } : config, ownDisk, existsSync(ownDisk), log);
  } catch (err) {
    return refuse(`DINV_CACHE_DIR=${config.cache?.dir}: ${(err as Error).message}`);
  }
  const dockerDisk = cache?.disk ?? ownDisk;
  // On a cache generation a warm state is the overlay's: its shape names the generation, so it restores onto that one only.
  const warm = await WarmStart.prepare({ ...(cache?.baseIdentity ? { dockerBase: cache.baseIdentity } : {}), config, pre, accel: choice.accel === "kvm" ? "kvm" : "tcg", dockerDisk, log, ...(saveOnly ? { saveOnly } : {}) });
  if ("refused" in warm) return refuse(warm.refused);
  const mayFormat: MayFormat = { docker: false, volume: false };
  try {
    await mkdir(config.dockerDir, { recursive: true });
    // A disk made from a saved base was checked against its digest just now: no qemu-img probes.
    if (cache) {
      // The job's first layer: the warm state's copy when one is restored, else a new one.
      if (!warm.dockerDiskMade) await cache.makeLayer();
      mayFormat.docker = cache.mayFormat && !warm.dockerDiskMade;
    }
    else {
      const docker = warm.dockerDiskMade
        ? { level: "info" as const, message: `made ${dockerDisk} from the saved state's docker disk`, mayFormat: false }
        : await ensureDisk(dockerDisk, config.dockerSizeBytes, "DINV_DOCKER_SIZE");
      log[docker.level](docker.message);
      mayFormat.docker = docker.mayFormat;
    }
    if (config.volume && volumeDisk) {
      await mkdir(config.volumeDir, { recursive: true });
      const volume = await ensureDisk(volumeDisk, config.volume.sizeBytes, "DINV_VOLUME_SIZE");
      log[volume.level](volume.message);
      mayFormat.volume = volume.mayFormat;
    }
  } catch (err) {
    if (!(err instanceof DiskError)) throw err;
    return refuse(err.message);
  }
  return { runDir, boot, discardUnpacked, warm, mayFormat, dockerDisk, volumeDisk, cache };
}
