// Every file of the run directory (DINV_RUN_DIR), named in one place: the launcher, the CLI, the
// side services and the checks on the directory's path all take them from here.

import { join } from "node:path";

/** Longest unix socket path the kernel takes (sun_path is 108 bytes with its terminating NUL). */
export const MAX_SOCKET_PATH = 107;

/** The most DINV_MOUNTS shares (q35; microvm has room for fewer), for the longest virtiofsd socket name. */
export const MAX_SHARES = 64;

export const RUN_FILES = {
  /** launcher pid: one launcher per run directory */
  launcherPid: "dinv.pid",
  /** QEMU's pid file */
  qemuPid: "qemu.pid",
  /** the control API (dinv status, wait, stop) */
  controlSocket: "control.sock",
  /** the agent channel: the launcher listens, QEMU connects */
  agentSocket: "agent.sock",
  /** QEMU's QMP monitor for commands (quit, forwards) */
  qmpSocket: "qmp.sock",
  /** a second QMP monitor the launcher stays connected to, for events (a full disk) */
  qmpEventsSocket: "qmp-events.sock",
  /** the warm template's QMP monitor, pid file and agent socket (never listened on: that QEMU never runs its guest) */
  templateQmpSocket: "qmp-tmpl.sock",
  templatePid: "tmpl.pid",
  templateAgentSocket: "agent-tmpl.sock",
  /** passt's socket, pid and log (DINV_NET=passt) */
  passtSocket: "passt.sock",
  passtPid: "passt.pid",
  passtLog: "passt.log",
  /** the initramfs with the early-start archive appended (0600: it may hold the TLS key) */
  bootInitrd: "initrd.cpio",
  /** the uncompressed kernel, extracted from the shipped bzImage at start */
  vmlinux: "vmlinux",
  /** the root image, unpacked from the shipped rootfs.img.zst at start */
  rootImage: "rootfs.img",
  /** the token the control API's TCP listener asks for (0600) */
  controlToken: "control.token",
  /** DOCKER_HOST (and the TLS variables) for a docker client beside the launcher: image/docker-client reads it */
  dockerClientEnv: "docker-client.env",
} as const;

/** The instance's disk images, each in its own directory (DINV_DOCKER_DIR, DINV_VOLUME_DIR). */
export const DISK_FILES = { docker: "docker.qcow2", volume: "volume.qcow2" } as const;
export const dockerDiskPath = (config: { dockerDir: string }) => join(config.dockerDir, DISK_FILES.docker);
export const volumeDiskPath = (config: { volumeDir: string }) => join(config.volumeDir, DISK_FILES.volume);

/** virtiofsd's socket for the i-th share. */
export const virtiofsSocketName = (i: number) => `virtiofs-${i}.sock`;

export const runPath = (runDir: string, name: string) => join(runDir, name);

/** The sockets of a run directory, longest name first. */
export const SOCKET_NAMES = [virtiofsSocketName(MAX_SHARES - 1), RUN_FILES.qmpEventsSocket, RUN_FILES.controlSocket, RUN_FILES.agentSocket, RUN_FILES.passtSocket, RUN_FILES.qmpSocket, RUN_FILES.templateQmpSocket, RUN_FILES.templateAgentSocket].sort((a, b) => b.length - a.length);

/** Why a run directory cannot hold its sockets, or undefined. Pure. */
export function runDirTooLong(runDir: string): string | undefined {
  const longest = Buffer.byteLength(join(runDir, SOCKET_NAMES[0]!));
  return longest > MAX_SOCKET_PATH ? `is too long for its sockets: ${join(runDir, SOCKET_NAMES[0]!)} would be ${longest} bytes, the kernel takes at most ${MAX_SOCKET_PATH}` : undefined;
}
