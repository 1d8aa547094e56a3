// The early start of dockerd: files the guest init needs to start dockerd before the agent is
// up (Node takes ~3 s of CPU to start under TCG), packed as a cpio archive appended to the
// initramfs. Pure; the launcher writes the result into its run directory.

import { DISK_SERIAL, EARLY_BOOT_DIR, EARLY_MAY_FORMAT, EARLY_OWN_CONTAINERD } from "../../shared/constants.js";
import { daemonJson, EARLY_CONTAINERD, TLS_FILES, usesContainerdStore } from "../../shared/daemon-config.js";
import type { GuestConfig } from "../../shared/protocol/guest-config.js";

export { EARLY_BOOT_DIR } from "../../shared/constants.js";

export interface ArchiveEntry {
  /** path inside the archive, relative, without a leading slash */
  path: string;
  /** permission bits (0o755, 0o600 ...) */
  mode: number;
  /** file contents; absent for a directory */
  data?: string;
}

/**
 * What the guest init gets for an early start, or why dockerd must wait for the agent: with a
 * volume disk or shares, containers that dockerd restarts at start-up (restart policies) must
 * find them mounted, and mounting them is the agent's work.
 */
export function earlyBootFiles(guest: GuestConfig): { files: ArchiveEntry[] } | { reason: string } {
  if (guest.shares.length > 0) return { reason: "DINV_MOUNTS are mounted by the agent before dockerd starts" };
  const others = guest.disks.filter((d) => d.role !== "docker");
  if (others.length > 0) return { reason: "the volume disk is mounted by the agent before dockerd starts" };
  const docker = guest.disks.find((d) => d.role === "docker");
  if (!docker || docker.serial !== DISK_SERIAL.docker) return { reason: "no docker disk in the guest configuration" };
  const dir = EARLY_BOOT_DIR;
  const tls = guest.dockerd.tls;
  return {
    files: [
      { path: dir, mode: 0o700 },
      { path: `${dir}/daemon.json`, mode: 0o600, data: daemonJson(guest.dockerd, EARLY_CONTAINERD) },
      // Present only when the guest may format the docker disk if it reads as blank (DiskSpec.mayFormat).
      ...(docker.mayFormat ? [{ path: `${dir}/${EARLY_MAY_FORMAT}`, mode: 0o600, data: "" }] : []),
      // The containerd image store: dockerd starts its own containerd, the init starts none.
      ...(usesContainerdStore(guest.dockerd) ? [{ path: `${dir}/${EARLY_OWN_CONTAINERD}`, mode: 0o600, data: "" }] : []),
      ...(tls
        ? [
            { path: `${dir}/tls`, mode: 0o700 },
            ...TLS_FILES.map((f) => ({ path: `${dir}/tls/${f.name}`, mode: f.mode, data: tls[f.field] })),
          ]
        : []),
    ],
  };
}

/**
 * A cpio archive in the "newc" format the kernel unpacks into the initramfs. Appended to the
 * shipped initramfs, its files join the others (the kernel reads concatenated archives).
 */
export function cpioNewc(entries: ArchiveEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    offset += b.length;
  };
  const pad = () => {
    if (offset % 4) push(Buffer.alloc(4 - (offset % 4)));
  };
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const entry = (ino: number, mode: number, nlink: number, name: string, data: Buffer) => {
    const nameBytes = Buffer.from(`${name}\0`, "utf8");
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
    const fields = [ino, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    push(Buffer.from(`070701${fields.map(hex).join("")}`, "ascii"));
    push(nameBytes);
    pad();
    push(data);
    pad();
  };
  entries.forEach((e, i) => {
    if (e.path.startsWith("/") || e.path.split("/").includes("..")) throw new Error(`archive path must be relative: ${e.path}`);
    const isDir = e.data === undefined;
    entry(i + 1, (isDir ? 0o040000 : 0o100000) | (e.mode & 0o7777), isDir ? 2 : 1, e.path, Buffer.from(e.data ?? "", "utf8"));
  });
  entry(0, 0, 1, "TRAILER!!!", Buffer.alloc(0));
  // The kernel skips the zeros between concatenated archives; 512-byte blocks as cpio(1) writes them.
  if (offset % 512) push(Buffer.alloc(512 - (offset % 512)));
  return Buffer.concat(parts);
}
