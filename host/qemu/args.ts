// QEMU's command line, built from the configuration and the probed facts. Pure.

import { AGENT_PORT_NAME, DISK_SERIAL } from "../../shared/constants.js";
import { formatSize } from "../config/size.js";
import type { HostConfig } from "../config/env.js";
import { forwardsOf, NETDEV_ID, slirpHostfwd } from "../net/forwards.js";
import type { QemuFeatures } from "./version.js";
import { incomingUri } from "../warm/uri.js";

export interface QemuPlan {
  accel: "kvm" | "tcg";
  /** what the QEMU in use needs (probed version) */
  qemu: QemuFeatures;
  kernel: string;
  initrd: string;
  rootImage: string;
  dockerDisk: string;
  /** the cache generation under dockerDisk (DINV_CACHE_DIR), opened read-only as its backing; absent: none */
  dockerBacking?: string;
  /** present when DINV_VOLUME_PATH is set */
  volumeDisk?: string;
  /** unix socket the launcher listens on; QEMU connects to it */
  agentSocket: string;
  qmpSocket: string;
  /** a second QMP monitor for events; absent: none */
  qmpEventsSocket?: string;
  pidFile: string;
  /** host TSC frequency in kHz, told to a TCG guest (whose TSC runs at the host's rate) */
  tscKhz?: number;
  /** extra kernel command-line words (benchmarks only) */
  extraCmdline?: string[];
  /** DINV_MOUNTS: tag and launcher-side directory */
  shares: { tag: string; path: string }[];
  /** the guest's network: QEMU's SLIRP (default), or passt over its socket */
  net?: { kind: "slirp" } | { kind: "passt"; socket: string };
  /** how shares reach the guest; virtiofs needs each share's virtiofsd socket */
  shareFs?: { kind: "9p" } | { kind: "virtiofs"; sockets: string[] };
  /**
   * restore a saved VM instead of booting (a warm start), the VM then paused: its migration stream
   * (QEMU before 8.2 reads it as its fd 3), or its RAM file mapped privately and read-only with the
   * device state loaded later (`-incoming defer`, host/warm/restore.ts)
   */
  incoming?: Incoming;
  /**
   * a template QEMU (host/warm/template.ts): RAM on a shared file it fills from a stream, a null
   * docker disk of the same size, no host forwards (the run's QEMU holds them), `-incoming defer`
   */
  template?: { ramPath: string; dockerBytes: number };
  /**
   * leave out the docker API's SLIRP forward: the launcher adds it once the guest may be reached
   * (after a warm state was saved from it, or after a restored guest was renewed)
   */
  withholdDockerForward?: boolean;
}


/** microvm exposes at most eight virtio-mmio transports (QEMU docs, microvm.rst). */
export const MICROVM_MMIO_SLOTS = 8;

export type Incoming = { kind: "stream"; path: string } | { kind: "mapped"; ramPath: string };

export class PlanError extends Error {}

/** The id QEMU gives a machine's RAM when it makes it itself: a migration finds RAM by this name, so an explicit backend takes it. */
export const ramBlockId = (machine: HostConfig["machine"]) => (machine === "microvm" ? "microvm.ram" : "pc.ram");

/** The RAM file's memory backend: shared while a template fills it; private, read-only underneath, for a restore. Pure. */
function ramFileBackend(config: HostConfig, plan: QemuPlan): string | undefined {
  const size = formatSize(config.memoryBytes);
  const id = ramBlockId(config.machine);
  if (plan.template) return `memory-backend-file,id=${id},size=${size},mem-path=${qemuEscape(plan.template.ramPath)},share=on`;
  // readonly=on,rom=off (QEMU 8.2): the file opens read-only, the guest's writes land in private
  // copies; a discard (the balloon's free page reports) then fails instead of punching the shared file.
  if (plan.incoming?.kind === "mapped") return `memory-backend-file,id=${id},size=${size},mem-path=${qemuEscape(plan.incoming.ramPath)},share=off,readonly=on,rom=off`;
  return undefined;
}

/** Commas separate QEMU options; a literal comma in a value is written twice. */
export function qemuEscape(value: string): string {
  return value.replace(/,/g, ",,");
}

/**
 * Whether the guest runs its processes without address-space randomisation. TCG keys its
 * translated code on the virtual address: with randomised mappings every exec translates its
 * libraries again (an exec of /bin/true: ~50 ms of guest time against ~15 ms without).
 */
export function guestAslrOff(setting: HostConfig["guestAslr"], accel: "kvm" | "tcg"): boolean {
  return setting === "off" || (setting === "auto" && accel === "tcg");
}

/** Whether the balloon (free page reporting) gets a device: always on q35; on microvm when a virtio-mmio slot is left after the disks and shares. Pure. */
export function balloonFits(config: Pick<HostConfig, "machine">, plan: Pick<QemuPlan, "volumeDisk" | "shares">): boolean {
  return config.machine !== "microvm" || 4 + (plan.volumeDisk ? 1 : 0) + plan.shares.length < MICROVM_MMIO_SLOTS;
}

export function buildQemuArgs(config: HostConfig, plan: QemuPlan): string[] {
  const micro = config.machine === "microvm";
  // microvm has no PCI: every virtio device is its virtio-mmio ("-device") flavour.
  const dev = (kind: string) => `virtio-${kind}-${micro ? "device" : "pci"}`;
  const args: string[] = [];
  const push = (...items: string[]) => args.push(...items);

  const virtiofs = plan.shareFs?.kind === "virtiofs" && plan.shares.length > 0 ? plan.shareFs.sockets : undefined;
  // vhost-user devices map guest RAM into virtiofsd: it must be a shared memfd, named on -M.
  const ramFile = ramFileBackend(config, plan);
  if (ramFile && virtiofs) throw new PlanError("a VM with virtio-fs shares cannot map a saved RAM file");
  if (plan.incoming?.kind === "mapped" && !plan.qemu.fileMigration) throw new PlanError(`QEMU ${plan.qemu.version.major}.${plan.qemu.version.minor} cannot map a saved RAM file privately (8.2 or later can)`);
  const memBackend = virtiofs ? ",memory-backend=mem" : ramFile ? `,memory-backend=${ramBlockId(config.machine)}` : "";
  if (micro) {
    const slots = 4 + (plan.volumeDisk ? 1 : 0) + plan.shares.length;
    if (slots > MICROVM_MMIO_SLOTS) {
      throw new PlanError(
        `DINV_MOUNTS lists ${plan.shares.length} paths but microvm has room for ${MICROVM_MMIO_SLOTS - 4 - (plan.volumeDisk ? 1 : 0)} ` +
          `(it has ${MICROVM_MMIO_SLOTS} virtio-mmio slots); mount a common parent directory, or set DINV_MACHINE=q35`,
      );
    }
    // No option ROMs where QEMU loads the PVH vmlinux itself (7.2): they cost time under TCG.
    push("-M", `microvm,${plan.qemu.noOptionRoms ? "x-option-roms=off," : ""}isa-serial=on,rtc=on${memBackend}`);
    // virtio-mmio defaults to legacy (v1) devices, which virtiofsd's libvhost-user refuses.
    if (virtiofs) push("-global", "virtio-mmio.force-legacy=false");
  } else {
    push("-M", `q35${memBackend}`);
  }
  if (plan.accel === "kvm") push("-accel", "kvm", "-cpu", "host");
  // A 256 MiB translation cache: a boot to ready writes ~240 MB of host code, so it fits without a flush
  // (128 MiB flushes twice during boot); the 1 GiB default lets RSS keep growing as code accumulates (~16 MB per mounts-bench pass).
  // -cpu max: the CPU the agent's startup snapshot is written for (alpine/lib/agent-snapshot.sh).
  else push("-accel", "tcg,tb-size=256", "-cpu", "max");

  push("-smp", String(config.cpus), "-m", formatSize(config.memoryBytes));
  if (virtiofs) push("-object", `memory-backend-memfd,id=mem,size=${formatSize(config.memoryBytes)},share=on`);
  if (ramFile) push("-object", ramFile);
  // -no-reboot: the guest's "reboot -f" is its power-off; a guest panic also ends QEMU.
  push("-nodefaults", "-no-user-config", "-display", "none", "-no-reboot");
  push("-name", "dinv,process=dinv-qemu", "-pidfile", plan.pidFile);
  push("-kernel", plan.kernel, "-initrd", plan.initrd);
  push("-append", kernelCmdline(config, plan).join(" "));
  // signal=off: Ctrl-C reaches the launcher, which shuts the guest down cleanly.
  push("-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console");

  push(...diskArgs(plan, dev), ...netArgs(config, plan, dev));

  // The launcher listens first; QEMU connects and retries every second if the launcher restarts.
  push("-chardev", `socket,id=agent,path=${qemuEscape(plan.agentSocket)},${plan.qemu.reconnect}`);
  push("-device", `${dev("serial")},max_ports=2`);
  push("-device", `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`);
  // Free page reporting: the guest reports the pages it frees (2 MiB and larger, after ~2 s) and QEMU
  // discards them, so QEMU's RSS falls back after a container's peak. The balloon is never inflated.
  if (balloonFits(config, plan)) push("-device", `${dev("balloon")},free-page-reporting=on`);

  push(...shareArgs(config, plan, virtiofs, micro, dev));

  push("-chardev", `socket,id=qmp,path=${qemuEscape(plan.qmpSocket)},server=on,wait=off`);
  push("-mon", "chardev=qmp,mode=control");
  if (plan.qmpEventsSocket) {
    push("-chardev", `socket,id=qmpev,path=${qemuEscape(plan.qmpEventsSocket)},server=on,wait=off`);
    push("-mon", "chardev=qmpev,mode=control");
  }
  // A template and a mapped restore are given their state over QMP, after x-ignore-shared is set.
  if (plan.template || plan.incoming?.kind === "mapped") push("-incoming", "defer");
  else if (plan.incoming) push("-incoming", incomingUri(plan.incoming.path, plan.qemu.fileMigration));
  return args;
}

/** The guest kernel's command line for this plan. Pure. */
function kernelCmdline(config: HostConfig, plan: QemuPlan): string[] {
  const micro = config.machine === "microvm";
  const cmdline = ["console=ttyS0", "panic=-1", "quiet", "loglevel=4"];
  // microvm has no PCI bus; probing for one only prints "PCI: Fatal: No config space access".
  if (micro) cmdline.push("pci=off");
  // Under TCG the kernel's PIT calibration of the TSC fails at random and the boot hangs
  // ("tsc: Unable to calibrate against PIT"); telling it the frequency skips calibration.
  if (plan.accel === "tcg" && plan.tscKhz) cmdline.push(`tsc_early_khz=${plan.tscKhz}`);
  // The clocksource watchdog judges the TSC against jiffies, whose ticks TCG delivers late, marks
  // it unstable and falls back to refined-jiffies: 4 ms resolution and no vDSO, so each
  // clock_gettime becomes a syscall. TCG's TSC is the host's. One vCPU only: with two, two of
  // ~55 boots hung in the kernel before the initramfs (none of 30 without).
  if (plan.accel === "tcg" && config.cpus === 1) cmdline.push("tsc=reliable");
  if (guestAslrOff(config.guestAslr, plan.accel)) cmdline.push("norandmaps");
  return [...cmdline, ...(plan.extraCmdline ?? [])];
}

type Dev = (kind: string) => string;

/** The root image and the writable disks. Pure. */
function diskArgs(plan: QemuPlan, dev: Dev): string[] {
  const args: string[] = [];
  const push = (...items: string[]) => args.push(...items);
  push("-drive", `id=root,file=${qemuEscape(plan.rootImage)},format=raw,if=none,readonly=on`);
  push("-device", `${dev("blk")},drive=root,serial=${DISK_SERIAL.root}`);
  // The writable disks as -blockdev with "backing": null: QEMU opens no backing file a header may
  // name (the launcher checks headers too; -drive cannot say null). discard=unmap lets deleted
  // images shrink the sparse qcow2 again. werror=enospc: a full disk on the launcher's side pauses
  // the VM (the launcher reports it and resumes) instead of failing writes.
  const qcow2 = (node: string, file: string, backing: string | null = null) =>
    JSON.stringify({ driver: "qcow2", "node-name": node, discard: "unmap", backing, file: { driver: "file", filename: file, discard: "unmap" } });
  // A template never runs the guest: its docker disk reads zeros and drops writes.
  if (plan.template) {
    push("-blockdev", JSON.stringify({ driver: "null-co", "node-name": "docker", size: plan.template.dockerBytes }));
    push("-device", `${dev("blk")},drive=docker,serial=${DISK_SERIAL.docker},werror=enospc,rerror=report`);
    return args;
  }
  // A cache generation: the backing is named here, read-only, with no backing of its own.
  if (plan.dockerBacking) push("-blockdev", JSON.stringify({ driver: "qcow2", "node-name": "docker-base", "read-only": true, backing: null, file: { driver: "file", filename: plan.dockerBacking, "read-only": true } }));
  push("-blockdev", qcow2("docker", plan.dockerDisk, plan.dockerBacking ? "docker-base" : null));
  push("-device", `${dev("blk")},drive=docker,serial=${DISK_SERIAL.docker},werror=enospc,rerror=report`);
  if (plan.volumeDisk) {
    push("-blockdev", qcow2("volume", plan.volumeDisk));
    push("-device", `${dev("blk")},drive=volume,serial=${DISK_SERIAL.volume},werror=enospc,rerror=report`);
  }
  return args;
}

/** The guest's network: passt's socket, or SLIRP with the static forwards. Pure. */
function netArgs(config: HostConfig, plan: QemuPlan, dev: Dev): string[] {
  const args: string[] = [];
  const push = (...items: string[]) => args.push(...items);
  if (plan.net?.kind === "passt") {
    // passt listens; QEMU 7.2 connects once, at start (passt holds the port forwards).
    push("-netdev", `stream,id=${NETDEV_ID},server=off,addr.type=unix,addr.path=${qemuEscape(plan.net.socket)}`);
  } else {
    // The docker API's forward comes first in forwardsOf.
    const forwards = plan.template ? [] : forwardsOf(config).slice(plan.withholdDockerForward ? 1 : 0);
    push("-netdev", [`user,id=${NETDEV_ID}`, ...forwards.map(slirpHostfwd)].join(","));
  }
  push("-device", `${dev("net")},netdev=${NETDEV_ID}`);
  return args;
}

/** DINV_MOUNTS: vhost-user-fs devices on virtiofsd's sockets, or 9p exports. Pure. */
function shareArgs(config: HostConfig, plan: QemuPlan, virtiofs: string[] | undefined, micro: boolean, dev: Dev): string[] {
  const args: string[] = [];
  const push = (...items: string[]) => args.push(...items);
  plan.shares.forEach((share, i) => {
    if (virtiofs) {
      push("-chardev", `socket,id=vfs${i},path=${qemuEscape(virtiofs[i]!)}`);
      push("-device", `vhost-user-fs-${micro ? "device" : "pci"},chardev=vfs${i},tag=${share.tag}`);
      return;
    }
    // mapped-xattr: the guest's owners, modes, setuid bits and device nodes live in xattrs of
    // ordinary 0644/0755 files owned by QEMU's user, so root in the guest can plant no setuid
    // binary or device node on the launcher side. (none, the original's, passes them through.)
    const security = config.ninepSecurity === "none" ? "security_model=none" : "security_model=mapped-xattr,fmode=0644,dmode=0755";
    push("-fsdev", `local,id=fs${i},path=${qemuEscape(share.path)},${security}`);
    push("-device", `${dev("9p")},fsdev=fs${i},mount_tag=${share.tag}`);
  });
  return args;
}
