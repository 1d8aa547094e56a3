// Guest disks: found by virtio serial, formatted only when blank, mounted, owned.

import { readdir, readFile, mkdir, chown } from "node:fs/promises";
import type { DiskSpec } from "../../shared/protocol/guest-config.js";
import { diskAction } from "../../shared/disk-action.js";
import { must, run } from "./exec.js";
import { GuestStepError } from "./types.js";

/** What blkid's low-level probe found on a device. */
export type Probe = { kind: "blank" } | { kind: "filesystem"; type: string; label?: string } | { kind: "other"; what: string };

/** Decide from `blkid -p -o export` output and exit status (2 = nothing found). Pure. */
export function interpretBlkid(exitCode: number, stdout: string): Probe {
  if (exitCode === 2) return { kind: "blank" };
  const fields = Object.fromEntries(
    stdout
      .split("\n")
      .map((line) => line.split("="))
      .filter((kv) => kv.length >= 2)
      .map(([k, ...v]) => [k!, v.join("=")]),
  );
  if (fields.TYPE) return { kind: "filesystem", type: fields.TYPE, ...(fields.LABEL ? { label: fields.LABEL } : {}) };
  if (fields.PTTYPE) return { kind: "other", what: `a ${fields.PTTYPE} partition table` };
  return { kind: "other", what: `an unrecognised signature (blkid exit ${exitCode})` };
}

export async function findBySerial(serial: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const name of await readdir("/sys/block")) {
      const value = await readFile(`/sys/block/${name}/serial`, "utf8").catch(() => "");
      if (value.trim() === serial) return `/dev/${name}`;
    }
    if (Date.now() > deadline) {
      throw new GuestStepError(`no disk with serial ${serial} is attached`, "the launcher attaches it; check its log for qemu-img errors");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function prepareDisk(spec: DiskSpec): Promise<string> {
  const device = await findBySerial(spec.serial);
  const blkid = await run("blkid", ["-p", "-o", "export", device]);
  const probe = interpretBlkid(blkid.exitCode, blkid.stdout);
  let done: string;
  const action = diskAction(blkid.exitCode, probe.kind === "filesystem" ? probe.type : undefined, spec.mayFormat);
  if (action === "refuse-blank") {
    throw new GuestStepError(
      `the ${spec.role} disk (serial ${spec.serial}) reads as blank, but the launcher did not create it and it has held data, so dinv does not format it (a failed read also looks blank)`,
      "check the disk image on the launcher side (qemu-img check); move it aside to have dinv create a new one",
    );
  }
  if (action === "format") {
    await must("mkfs.ext4", ["-q", "-L", spec.label, "-E", "lazy_itable_init=1,lazy_journal_init=1", device], 600_000);
    done = "formatted blank disk as ext4";
  } else if (action === "mount") {
    done = `mounted existing ext4${probe.kind === "filesystem" && probe.label ? ` (label ${probe.label})` : ""}`;
  } else {
    const what = probe.kind === "filesystem" ? `a ${probe.type} filesystem` : probe.kind === "other" ? probe.what : "nothing";
    throw new GuestStepError(
      `the ${spec.role} disk (serial ${spec.serial}) holds ${what}; dinv only formats blank disks and mounts ext4, so it left it untouched`,
      `move the disk image aside (dinv then creates a new one) or give dinv an ext4 disk`,
    );
  }
  await mkdir(spec.mountPoint, { recursive: true });
  const mounted = await run("mount", ["-t", "ext4", "-o", "noatime", device, spec.mountPoint]);
  if (mounted.exitCode !== 0) {
    throw new GuestStepError(`cannot mount the ${spec.role} disk ${device} on ${spec.mountPoint}: ${mounted.stderr.trim()}`, "run e2fsck on the disk image");
  }
  // The launcher grows the image when DINV_*_SIZE grew; grow the filesystem with it (online,
  // a no-op when it already fills the disk). Shrinking is never attempted.
  const grown = await run("resize2fs", [device], 600_000);
  if (grown.exitCode !== 0) throw new GuestStepError(`cannot grow the ${spec.role} filesystem on ${device}: ${grown.stderr.trim()}`);
  if (/is now \d+/.test(grown.stdout + grown.stderr)) done += ", grown to fill the disk";
  if (spec.owner) await chown(spec.mountPoint, spec.owner.uid, spec.owner.gid);
  return `${done} on ${device}, mounted at ${spec.mountPoint}`;
}
