// The guest's own files that its shell scripts (alpine/rootfs/usr/lib/dinv/) and the agent both
// name: markers, results and logs of the init, the containerd it starts early and that
// containerd's configuration. One owner; the scripts get them from the rendered constants.sh and
// containerd.toml is rendered from here at build time (shared/shell-constants.ts).

/** The guest's run directory (tmpfs /run): markers, results, logs. */
export const GUEST_RUN_DIR = "/run/dinv";

export const GUEST_FILES = {
  /** the init's start, "UPTIME_SECONDS" */
  initStarted: `${GUEST_RUN_DIR}/init-started`,
  /** prep's result, "EXIT_STATUS UPTIME_SECONDS", written atomically */
  prepResult: `${GUEST_RUN_DIR}/prep.rc`,
  prepLog: `${GUEST_RUN_DIR}/prep.log`,
  /** the early start's result, key=value lines, written atomically */
  earlyResult: `${GUEST_RUN_DIR}/early.rc`,
  earlyLog: `${GUEST_RUN_DIR}/early.log`,
  /** dockerd's output when the early start ran it (the agent follows it) */
  dockerdLog: `${GUEST_RUN_DIR}/dockerd.log`,
  containerdLog: `${GUEST_RUN_DIR}/containerd.log`,
  /** the agent got far enough that the init never starts another (its pid) */
  agentStarted: `${GUEST_RUN_DIR}/agent-started`,
  /** the early containerd's configuration (its command line names it: the agent recognises it by it) */
  containerdConfig: "/usr/lib/dinv/containerd.toml",
  /** the early containerd's socket */
  containerdSocket: "/run/containerd/containerd.sock",
} as const;

/** The early containerd's configuration: only what dockerd uses. Pure. */
export function renderContainerdToml(): string {
  return `# Generated from shared/guest-paths.ts by scripts/bundle.mjs; do not edit.
# containerd for the guest's dockerd, started by the guest init before the agent is up (it takes
# seconds under TCG; started early it is ready when dockerd starts). Only what dockerd uses:
# Kubernetes' CRI and sandboxes, NRI and the snapshotters dockerd never asks for stay unloaded.
# Version 3, containerd 2's own format (an older one is migrated at every start).
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = [
${["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.grpc.v1.sandbox-controllers", "io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs"].map((p) => `  "${p}",`).join("\n")}
]

[grpc]
  address = "${GUEST_FILES.containerdSocket}"
`;
}
