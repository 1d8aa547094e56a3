// The values the guest's shell scripts share with the TypeScript, rendered at build time into
// /usr/lib/dinv/constants.sh (and the initramfs's /etc/dinv-constants.sh), which the scripts
// source: one owner for each name, no literal retyped in a script.

import { DISK_LABEL, DISK_SERIAL, EARLY_BOOT_DIR, EARLY_MAY_FORMAT, EARLY_OWN_CONTAINERD, GUEST_DOCKER_ROOT, INITRAMFS_STARTED, MIN_ENGINE, SLIRP } from "./constants.js";
import { DAEMON_JSON, EARLY_CONTAINERD, TLS_DIR } from "./daemon-config.js";
import { renderDiskActionShell } from "./disk-action.js";
import { GUEST_FILES, GUEST_RUN_DIR } from "./guest-paths.js";
export { renderContainerdToml } from "./guest-paths.js";

export const SHELL_CONSTANTS: Record<string, string> = {
  DINV_SERIAL_ROOT: DISK_SERIAL.root,
  DINV_SERIAL_DOCKER: DISK_SERIAL.docker,
  DINV_LABEL_DOCKER: DISK_LABEL.docker,
  DINV_DOCKER_ROOT: GUEST_DOCKER_ROOT,
  DINV_DAEMON_JSON: DAEMON_JSON,
  DINV_TLS_DIR: TLS_DIR,
  DINV_EARLY_CONTAINERD: EARLY_CONTAINERD,
  DINV_BOOT_DIR_NAME: EARLY_BOOT_DIR,
  DINV_MAY_FORMAT: EARLY_MAY_FORMAT,
  DINV_OWN_CONTAINERD: EARLY_OWN_CONTAINERD,
  DINV_GUEST_ADDRESS: SLIRP.guestAddress,
  DINV_GATEWAY: SLIRP.gateway,
  DINV_DNS: SLIRP.dns,
  DINV_INITRAMFS_STARTED: INITRAMFS_STARTED,
  DINV_MIN_DOCKERD_MAJOR: String(MIN_ENGINE.dockerd),
  DINV_MIN_CONTAINERD_MAJOR: String(MIN_ENGINE.containerd),
  DINV_RUN: GUEST_RUN_DIR,
  DINV_INIT_STARTED: GUEST_FILES.initStarted,
  DINV_PREP_RC: GUEST_FILES.prepResult,
  DINV_PREP_LOG: GUEST_FILES.prepLog,
  DINV_EARLY_RC: GUEST_FILES.earlyResult,
  DINV_EARLY_LOG: GUEST_FILES.earlyLog,
  DINV_DOCKERD_LOG: GUEST_FILES.dockerdLog,
  DINV_CONTAINERD_LOG: GUEST_FILES.containerdLog,
  DINV_AGENT_STARTED: GUEST_FILES.agentStarted,
  DINV_CONTAINERD_TOML: GUEST_FILES.containerdConfig,
};

/** POSIX shell assignments, single-quoted. Pure. */
export function renderShellConstants(values: Record<string, string> = SHELL_CONSTANTS): string {
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const lines = Object.entries(values).map(([k, v]) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(k)) throw new Error(`not a shell variable name: ${k}`);
    return `${k}=${quote(v)}`;
  });
  return `# Generated from shared/shell-constants.ts by scripts/bundle.mjs; do not edit.\n${lines.join("\n")}\n${renderDiskActionShell()}\n`;
}
