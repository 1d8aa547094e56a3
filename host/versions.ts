// What a build installed: the guest's versions (alpine/build.sh writes them into the guest's
// manifest.json) and the image's (image/build-base.sh writes image-versions.json). `dinv version`
// prints them; the README's versions line and the tests are checked against the same renderings.

import { openSync, closeSync, fstatSync, readSync, constants } from "node:fs";
import { z } from "zod";

/** A Debian package version as dpkg prints it (epoch, upstream, revision). */
const DebVersion = z.string().regex(/^[0-9A-Za-z.+~:-]{1,80}$/);

/** The guest's components: Debian package versions, the kernel as its release name. */
export const GuestVersionsSchema = z.object({
  dockerd: DebVersion,
  containerd: DebVersion,
  runc: DebVersion,
  /** kernel release, e.g. 6.12.57+deb13-amd64 */
  kernel: DebVersion,
  node: DebVersion,
});
export type GuestVersions = z.infer<typeof GuestVersionsSchema>;

/** The container image's components (Debian package versions). */
export const ImageVersionsSchema = z.object({
  dockerCli: DebVersion,
  buildx: DebVersion,
  compose: DebVersion,
  qemu: DebVersion,
  virtiofsd: DebVersion,
  passt: DebVersion,
  node: DebVersion,
});
export type ImageVersions = z.infer<typeof ImageVersionsSchema>;

/** The guest build's manifest.json, the part this module reads. */
export const GuestManifestSchema = z.object({ versions: GuestVersionsSchema });

/**
 * A Debian version's upstream part: no epoch, no Debian revision, no repack suffix (+dfsg, +ds,
 * ~cs...); passt's snapshot versions (0.0~git20261002.cba3570) as the date they name. Pure.
 */
export function upstreamVersion(deb: string): string {
  const snapshot = /~git(\d{4})(\d{2})(\d{2})/.exec(deb);
  if (snapshot) return `${snapshot[1]}-${snapshot[2]}-${snapshot[3]}`;
  return deb.replace(/^\d+:/, "").replace(/-[^-]*$/, "").replace(/[+~].*$/, "");
}

/** The leading number of a version ("28.5.2+dfsg4-5" -> 28). Pure. */
export function majorOf(version: string): number {
  return Number(/^(?:\d+:)?(\d+)/.exec(version)?.[1] ?? Number.NaN);
}

/** The release a version line names: major.minor, or a snapshot's year-month. Pure. */
export function releaseOf(deb: string): string {
  const up = upstreamVersion(deb);
  return /^\d{4}-\d{2}-\d{2}$/.test(up) ? up.slice(0, 7) : up.split(".").slice(0, 2).join(".");
}

const GUEST_NAMES: Record<keyof GuestVersions, string> = { dockerd: "dockerd", containerd: "containerd", runc: "runc", kernel: "Linux", node: "Node" };
const IMAGE_NAMES: Record<keyof ImageVersions, string> = { dockerCli: "docker CLI", buildx: "buildx", compose: "compose", qemu: "QEMU", virtiofsd: "virtiofsd", passt: "passt", node: "Node" };

function render<T extends Record<string, string>>(v: T, names: Record<keyof T, string>, pick: (deb: string) => string): string {
  return (Object.keys(names) as (keyof T)[]).map((k) => `${names[k]} ${pick(v[k]!)}`).join(", ");
}

/** "dockerd 28.5.2, containerd 2.1.9, ..." (full upstream versions). Pure. */
export const guestLine = (v: GuestVersions, pick = upstreamVersion) => render(v, GUEST_NAMES, pick);
export const imageLine = (v: ImageVersions, pick = upstreamVersion) => render(v, IMAGE_NAMES, pick);

/** The README's versions line: releases only (major.minor), so a Debian revision does not move it. Pure. */
export function readmeVersionsLine(guest: GuestVersions, image: ImageVersions): string {
  return `Guest: ${guestLine(guest, releaseOf)}. Image: ${imageLine(image, releaseOf)}.`;
}

/** Largest manifest read, in bytes: these are small files; anything bigger is not one. */
const MAX_MANIFEST_BYTES = 64 * 1024;

/** A JSON file parsed with a schema; undefined when absent; an Error naming the file when invalid. */
export function readJsonFile<T>(path: string, schema: z.ZodType<T>): T | undefined | Error {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT" ? undefined : new Error(`${path}: ${(err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_MANIFEST_BYTES) return new Error(`${path}: not a regular file of at most ${MAX_MANIFEST_BYTES} bytes`);
    const buf = Buffer.alloc(st.size);
    const n = readSync(fd, buf, 0, st.size, 0);
    const parsed = schema.safeParse(JSON.parse(buf.subarray(0, n).toString("utf8")));
    return parsed.success ? parsed.data : new Error(`${path}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  } catch (err) {
    return new Error(`${path}: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}
