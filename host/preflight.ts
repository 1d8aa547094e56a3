// Probing before any side effect: guest files, QEMU, mount paths, KVM. Returns problems in
// words a user can act on; creates and changes nothing.

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import type { HostConfig } from "./config/env.js";
import { probeKvm, type KvmProbe } from "./qemu/accel.js";
import { qemuFeatures, QemuVersionError, type QemuFeatures } from "./qemu/version.js";
import type { VirtiofsProbe } from "./share/choose.js";
import { virtiofsdFlavour, type VirtiofsdFlavour } from "./share/virtiofsd.js";

/** Where Debian 12 (QEMU 7.2's C daemon), Debian 13 and others (the Rust one) install virtiofsd. */
const VIRTIOFSD_PATHS = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd", "/usr/lib/virtiofsd"];

export interface GuestFiles {
  /** the kernel QEMU boots (chooseKernel): a vmlinux, or the bzImage, or the bzImage to extract a vmlinux from */
  kernel: string;
  /** the kernel above is a bzImage: extract vmlinux from it before booting */
  kernelCompressed?: boolean;
  initrd: string;
  /** rootfs.img when the guest directory has it, else the rootfs.img.zst the launcher unpacks */
  rootImage: string;
  /** the root image above is zstd-compressed: unpack it before booting */
  rootCompressed?: boolean;
}

export interface Preflight {
  problems: string[];
  kvm: KvmProbe;
  guest: GuestFiles;
  /** what the installed QEMU needs on its command line; absent when it cannot run (then a problem says why) */
  qemu?: QemuFeatures;
  /** host TSC frequency from /proc/cpuinfo, kHz */
  tscKhz?: number;
  /** what virtio-fs needs, probed only when DINV_MOUNTS may use it */
  virtiofs?: VirtiofsProbe;
}

/** virtiofsd's binary and whether unshare(CLONE_FS) is allowed (perl is Essential in Debian). */
export async function probeVirtiofs(): Promise<VirtiofsProbe> {
  let binary: string | undefined;
  let flavour: VirtiofsdFlavour | undefined;
  for (const path of VIRTIOFSD_PATHS) {
    if (!(await stat(path).catch(() => undefined))?.isFile()) continue;
    const version = await execa(path, ["--version"], { reject: false, timeout: 5000 });
    flavour = virtiofsdFlavour(`${version.stdout}\n${version.stderr}`);
    if (flavour) { binary = path; break; }
  }
  // syscall 272 = unshare on x86_64, 0x200 = CLONE_FS: exactly the call virtiofsd's threads make.
  const probe = await execa("perl", ["-e", "exit(syscall(272, 0x200) == 0 ? 0 : 1)"], { reject: false });
  return { ...(binary && flavour ? { binary, flavour } : {}), unshareFs: probe.exitCode === 0 };
}

/** "cpu MHz : 2445.432" -> 2445432. Pure. */
export function tscKhzFromCpuinfo(cpuinfo: string): number | undefined {
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1]);
  return Number.isFinite(mhz) && mhz > 100 ? Math.round(mhz * 1000) : undefined;
}

/**
 * The kernel file QEMU boots. Before 8.0 QEMU loads a PVH vmlinux itself, which skips the kernel's
 * own decompression (seconds under TCG): the vmlinux, extracted from the bzImage when only that
 * ships. From 8.0 the pvh.bin option ROM loads it, and under TCG this kernel then fails its early
 * boot at random (a divide error before the console, or a hang; about one boot in three here, none
 * of the same number with the bzImage): those QEMUs boot the bzImage. Pure.
 */
export function chooseKernel(bootsVmlinux: boolean, hasVmlinux: boolean, hasVmlinuz: boolean): "vmlinux" | "vmlinuz" | "extract" {
  if (!bootsVmlinux) return hasVmlinuz || !hasVmlinux ? "vmlinuz" : "vmlinux";
  return hasVmlinux || !hasVmlinuz ? "vmlinux" : "extract";
}

export async function preflight(config: HostConfig, qemuBinary: string, kvm?: KvmProbe): Promise<Preflight> {
  const problems: string[] = [];
  const isFile = async (path: string) => (await stat(path).catch(() => undefined))?.isFile() ?? false;
  const version = await execa(qemuBinary, ["--version"], { reject: false });
  let qemu: QemuFeatures | undefined;
  if (version.exitCode !== 0) problems.push(`${qemuBinary} not found or not runnable; install qemu-system-x86`);
  else {
    try {
      qemu = qemuFeatures(String(version.stdout));
    } catch (err) {
      if (!(err instanceof QemuVersionError)) throw err;
      problems.push(err.message);
    }
  }
  const vmlinux = join(config.guestDir, "vmlinux");
  const vmlinuz = join(config.guestDir, "vmlinuz");
  const kernel = chooseKernel(qemu?.bootsVmlinux ?? true, await isFile(vmlinux), await isFile(vmlinuz));
  const compressed = kernel === "extract";
  const rootPlain = join(config.guestDir, "rootfs.img");
  const rootZst = join(config.guestDir, "rootfs.img.zst");
  const rootCompressed = !(await isFile(rootPlain)) && (await isFile(rootZst));
  const guest: GuestFiles = {
    kernel: kernel === "vmlinux" ? vmlinux : vmlinuz,
    ...(compressed ? { kernelCompressed: true } : {}),
    initrd: join(config.guestDir, "initramfs.cpio"),
    rootImage: rootCompressed ? rootZst : rootPlain,
    ...(rootCompressed ? { rootCompressed: true } : {}),
  };
  for (const file of [guest.kernel, guest.initrd, guest.rootImage]) {
    const s = await stat(file).catch(() => undefined);
    if (!s?.isFile()) problems.push(`guest file ${file} is missing (DINV_GUEST_DIR=${config.guestDir}); build it with: npm run build`);
  }
  for (const path of config.mounts) {
    const s = await stat(path).catch(() => undefined);
    if (!s) problems.push(`DINV_MOUNTS: "${path}" does not exist; create it or bind it into the container (-v HOST:${path})`);
    else if (!s.isDirectory()) problems.push(`DINV_MOUNTS: "${path}" is not a directory; only directories can be shared`);
  }
  for (const [variable, dir] of [["DINV_DOCKER_DIR", config.dockerDir], ["DINV_VOLUME_DIR", config.volumeDir]] as const) {
    const s = await stat(dir).catch(() => undefined);
    if (s && !s.isDirectory()) problems.push(`${variable}: "${dir}" exists and is not a directory`);
  }
  const tscKhz = tscKhzFromCpuinfo(await readFile("/proc/cpuinfo", "utf8").catch(() => ""));
  const virtiofs = config.mounts.length > 0 && config.mountsFs !== "9p" ? await probeVirtiofs() : undefined;
  return { problems, kvm: kvm ?? (await probeKvm()), guest, ...(qemu ? { qemu } : {}), ...(tscKhz ? { tscKhz } : {}), ...(virtiofs ? { virtiofs } : {}) };
}
