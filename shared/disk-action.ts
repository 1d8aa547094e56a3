// What the guest does with a disk, decided in one place: format it only when blkid's low-level
// probe finds nothing at all (exit 2) and the launcher says it created it; mount it when it holds
// ext4; anything else is left untouched. The agent evaluates the table (guest/system/disk.ts); the
// early start's shell script (alpine/rootfs/usr/lib/dinv/early-dockerd) runs the same table as
// the shell function rendered from it (constants.sh), since it acts before the agent can.

/** format: make ext4; mount: mount the ext4; refuse-blank: blank but not ours; refuse-other: another signature. */
export type DiskAction = "format" | "mount" | "refuse-blank" | "refuse-other";

/** Rows in order, first match wins: blkid -p's exit status, the TYPE it found, whether the launcher may have it formatted. */
export const DISK_ACTIONS: readonly (readonly [rc: "2" | "0" | "*", type: "ext4" | "*", mayFormat: "1" | "0" | "*", action: DiskAction])[] = [
  ["2", "*", "1", "format"],
  ["2", "*", "0", "refuse-blank"],
  ["0", "ext4", "*", "mount"],
  ["*", "*", "*", "refuse-other"],
];

/** The action for one probe. Pure. */
export function diskAction(blkidExit: number, type: string | undefined, mayFormat: boolean): DiskAction {
  const facts = [String(blkidExit), type ?? "", mayFormat ? "1" : "0"];
  const row = DISK_ACTIONS.find((r) => r.slice(0, 3).every((want, i) => want === "*" || want === facts[i]));
  return row![3];
}

/** The same table as a POSIX shell function: sets disk_action from "$1" (exit), "$2" (TYPE), "$3" (1/0). */
export function renderDiskActionShell(): string {
  const cases = DISK_ACTIONS.map(([rc, type, may, action]) => `    ${rc}:${type}:${may}) disk_action=${action} ;;`);
  return ["dinv_disk_action() {", '  case "$1:$2:$3" in', ...cases, "  esac", "}"].join("\n");
}
