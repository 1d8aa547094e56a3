// Shares (9p or virtio-fs) and the unmount-everything step of a clean shutdown.

import { readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, readlink } from "node:fs/promises";
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

/** "37 31 254:16 / /var/lib/docker rw ..." -> the device (major:minor) mounted at each of `points`. Pure. */
export function devicesAt(mountinfo: string, points: string[]): Map<string, string> {
  const devices = new Map<string, string>();
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const point = f[4]?.replace(/\\040/g, " ");
    // Only block devices (major > 0): tmpfs, overlay and other virtual filesystems have major 0.
    if (point && points.includes(point) && f[2] && !f[2].startsWith("0:")) devices.set(point, f[2]);
  }
  return devices;
}

/** Read a /proc file; "" when the process is gone. */
function procText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * Processes whose mount namespace still holds one of `devices` (after our own unmount). Synchronous:
 * /proc is in memory, and under TCG each asynchronous read's round trip through libuv costs more than the read.
 */
function stillMounted(devices: Set<string>): string[] {
  const found: string[] = [];
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc");
  } catch {
    /* no /proc: nothing to say */
  }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    const hit = procText(`/proc/${pid}/mountinfo`).split("\n").find((l) => devices.has(l.split(" ")[2] ?? ""));
    if (hit) found.push(`${procText(`/proc/${pid}/comm`).trim() || "?"}[${pid}] at ${hit.split(" ")[4]}`);
    if (found.length >= 3) break;
  }
  return found;
}

/**
 * Unmount everything under roots, innermost first, while `othersEnding` (the other processes being
 * ended) runs: a point they keep busy is tried again, alone, once it settled.
 */
export async function unmountAll(roots: string[], othersEnding: Promise<unknown> = Promise.resolve()): Promise<string> {
  const points = unmountOrder(await readFile("/proc/mounts", "utf8"), roots);
  const devices = new Set(devicesAt(await readFile("/proc/self/mountinfo", "utf8").catch(() => ""), roots).values());
  const failed: string[] = [];
  const readOnly: string[] = [];
  // One umount for all (each exec costs ~0.1 s under TCG); one at a time only for what it left.
  const all = points.length ? await run("umount", points) : { exitCode: 0 };
  await othersEnding;
  const left = all.exitCode === 0 ? [] : unmountOrder(await readFile("/proc/mounts", "utf8"), roots);
  for (const point of left) {
    const result = await run("umount", [point]);
    if (result.exitCode !== 0) {
      // Busy: at least make it read-only so the journal is clean.
      const ro = await run("mount", ["-o", "remount,ro", point]);
      if (ro.exitCode !== 0) failed.push(`${point} (${result.stderr.trim()})`);
      else readOnly.push(`${point} (${result.stderr.trim()}; ${await holders(point)})`);
    }
  }
  // A mount namespace of another process keeps a filesystem alive after our unmount: its journal
  // would then be left for recovery. Say so rather than claim a clean stop.
  const held = readOnly.length ? [] : stillMounted(devices);
  // The last unmount of a filesystem wrote it out; one still held (or read-only) is flushed here.
  if (held.length || readOnly.length) await run("sync", []);
  if (held.length) failed.push(`a disk still mounted in another mount namespace (${held.join(", ")})`);
  if (failed.length) throw new GuestStepError(`could not unmount ${failed.join(", ")}`);
  const ro = readOnly.length ? `; busy, remounted read-only: ${readOnly.join(", ")}` : "";
  return `${points.length - readOnly.length} filesystem(s) unmounted${ro}`;
}

/** Which processes keep files open under `point`, for the shutdown step's detail. */
async function holders(point: string): Promise<string> {
  const names: string[] = [];
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (target === point || target.startsWith(`${point}/`)) {
        const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "?")).trim();
        names.push(`${comm}[${pid}]`);
        break;
      }
    }
    if (names.length >= 5) break;
  }
  return names.length ? `open by ${names.join(" ")}` : "no process holds a file there";
}
