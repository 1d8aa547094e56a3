// `dinv version [--json]`: dinv's own version and what its build installed (the guest's manifest,
// the image's versions file when running from the image).

import { join } from "node:path";
import { GuestManifestSchema, guestLine, ImageVersionsSchema, imageLine, readJsonFile, type GuestVersions, type ImageVersions } from "../versions.js";

/** Where the image keeps its own versions (written by image/build-base.sh into the base). */
export const IMAGE_VERSIONS_FILE = "/usr/lib/dinv/image-versions.json";

type Out = { write: (s: string) => unknown };

export interface VersionReport {
  dinv: string;
  guest: GuestVersions | null;
  image: ImageVersions | null;
  /** why a part is missing or unreadable */
  problems: string[];
}

export function versionReport(dinv: string, guestDir: string, imageFile = IMAGE_VERSIONS_FILE): VersionReport {
  const problems: string[] = [];
  const guest = readJsonFile(join(guestDir, "manifest.json"), GuestManifestSchema);
  const image = readJsonFile(imageFile, ImageVersionsSchema);
  if (guest === undefined) problems.push(`no guest manifest in ${guestDir} (build the guest: npm run build)`);
  if (guest instanceof Error) problems.push(`guest manifest unreadable: ${guest.message}`);
  if (image instanceof Error) problems.push(`image versions unreadable: ${image.message}`);
  return {
    dinv,
    guest: guest && !(guest instanceof Error) ? guest.versions : null,
    image: image && !(image instanceof Error) ? image : null,
    problems,
  };
}

/** Exit 0 with the guest's versions known, 1 without them. */
export function printVersion(report: VersionReport, json: boolean, out: Out, err: Out): number {
  if (json) out.write(`${JSON.stringify(report)}\n`);
  else {
    out.write(`dinv ${report.dinv}\n`);
    if (report.guest) out.write(`guest: ${guestLine(report.guest)}\n`);
    out.write(report.image ? `image: ${imageLine(report.image)}\n` : "image: not running from the dinv image (QEMU and the clients are this host's)\n");
  }
  for (const p of report.problems) err.write(`dinv version: ${p}\n`);
  return report.guest ? 0 : 1;
}
