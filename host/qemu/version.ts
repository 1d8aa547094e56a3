// What the QEMU in use needs on its command line: development machines run Debian 12's QEMU 7.2,
// the container image Debian 13's QEMU 10. Probing (`--version`) happens in preflight; the
// decision is pure and table-tested.

export interface QemuFeatures {
  /** major and minor version, as printed by `qemu-system-x86_64 --version` */
  version: { major: number; minor: number };
  /**
   * whether microvm may run without option ROMs: QEMU 7.2 loads a PVH vmlinux itself, QEMU 8 and
   * later boot it through the pvh.bin option ROM (with x-option-roms=off the guest prints nothing)
   */
  noOptionRoms: boolean;
  /** whether a PVH vmlinux boots reliably: QEMU before 8.0 loads it itself; later ones boot the bzImage (host/preflight.ts, chooseKernel) */
  bootsVmlinux: boolean;
  /** the chardev socket option that retries a lost connection: `reconnect` (s) before 9.2, `reconnect-ms` since (the old one is deprecated) */
  reconnect: "reconnect=1" | "reconnect-ms=1000";
  /** whether migration takes a file: URI (8.2 and later, where fd: on a file is deprecated); else fd: and exec: */
  fileMigration: boolean;
}

/** The oldest QEMU dinv is tested with (Debian 12). */
export const MIN_QEMU = { major: 7, minor: 2 };

export class QemuVersionError extends Error {}

/** "QEMU emulator version 10.0.13 (Debian 1:10.0.13+ds-0+deb13u1)" -> features. Pure. */
export function qemuFeatures(versionText: string): QemuFeatures {
  const m = /version (\d+)\.(\d+)/.exec(versionText);
  if (!m) throw new QemuVersionError(`cannot read QEMU's version from ${JSON.stringify(versionText.slice(0, 200))}`);
  const version = { major: Number(m[1]), minor: Number(m[2]) };
  const atLeast = (major: number, minor: number) => version.major > major || (version.major === major && version.minor >= minor);
  if (!atLeast(MIN_QEMU.major, MIN_QEMU.minor)) {
    throw new QemuVersionError(`QEMU ${version.major}.${version.minor} is too old: dinv needs ${MIN_QEMU.major}.${MIN_QEMU.minor} or later (-netdev stream, vhost-user-fs on microvm)`);
  }
  return {
    version,
    noOptionRoms: !atLeast(8, 0),
    bootsVmlinux: !atLeast(8, 0),
    reconnect: atLeast(9, 2) ? "reconnect-ms=1000" : "reconnect=1",
    fileMigration: atLeast(8, 2),
  };
}
