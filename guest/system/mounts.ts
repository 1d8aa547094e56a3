// Shares (9p or virtio-fs) and the unmount-everything step of a clean shutdown.

import { mkdir, readFile } from "node:fs/promises";
import type { ShareSpec } from "../../shared/protocol/guest-config.js";
import { run } from "./exec.js";
import { GuestStepError } from "./types.js";

export async function mountShare(spec: ShareSpec): Promise<void> {
  await mkdir(spec.mountPoint, { recursive: true });
  // The transport's modules are not loaded at boot (a guest without shares never needs them).
  const loaded = await run("modprobe", ["-a", ...shareModules(spec)]);
  if (loaded.exitCode !== 0) {
    throw new GuestStepError(`cannot load the ${spec.fs} modules for share ${spec.tag}: ${loaded.stderr.trim()}`);
  }
  const result = await run("mount", shareMountArgs(spec));
  if (result.exitCode !== 0) {
    throw new GuestStepError(`cannot mount share ${spec.tag} on ${spec.mountPoint}: ${result.stderr.trim()}`);
  }
}

/** Kernel modules a share's transport needs (the 9p filesystem does not pull in its virtio transport). Pure. */
export function shareModules(spec: Pick<ShareSpec, "fs">): string[] {
  return spec.fs === "virtiofs" ? ["virtiofs"] : ["9pnet_virtio", "9p"];
}

/** mount(8) arguments for one share. Pure. */
export function shareMountArgs(spec: ShareSpec): string[] {
  if (spec.fs === "virtiofs") return ["-t", "virtiofs", spec.tag, spec.mountPoint];
  return ["-t", "9p", "-o", ["trans=virtio", "version=9p2000.L", ...(spec.options ? [spec.options] : [])].join(","), spec.tag, spec.mountPoint];
}

/** Mount points of disks and shares, deepest first, from /proc/mounts text. Pure. */
export function unmountOrder(procMounts: string, under: string[]): string[] {
  const points = procMounts
    .split("\n")
    .map((line) => line.split(" ")[1])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\040/g, " "))
    .filter((p) => under.some((root) => p === root || p.startsWith(root.endsWith("/") ? root : `${root}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function unmountAll(roots: string[]): Promise<string> {
  const points = unmountOrder(await readFile("/proc/mounts", "utf8"), roots);
  const failed: string[] = [];
  for (const point of points) {
    const result = await run("umount", [point]);
    if (result.exitCode !== 0) {
      // Busy: at least make it read-only so the journal is clean.
      const ro = await run("mount", ["-o", "remount,ro", point]);
      if (ro.exitCode !== 0) failed.push(point);
    }
  }
  await run("sync", []);
  if (failed.length) throw new GuestStepError(`could not unmount ${failed.join(", ")}`);
  return `${points.length} filesystem(s) unmounted`;
}
