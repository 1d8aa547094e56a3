// The versions manifest: Debian versions read as upstream ones, the README's versions line
// checked against what the build installed (the guest's manifest and the clients the image ships).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GuestManifestSchema, guestLine, majorOf, readJsonFile, readmeVersionsLine, releaseOf, upstreamVersion, type ImageVersions } from "../../host/versions.js";
import { printVersion, versionReport } from "../../host/cli/version.js";

const REPO = join(import.meta.dirname, "../..");

test("Debian versions read as upstream versions and releases", () => {
  const cases: [string, string, string, number][] = [
    ["28.5.2+dfsg4-5", "28.5.2", "28.5", 28],
    ["2.1.9+ds1-5", "2.1.9", "2.1", 2],
    ["1.3.6+ds1-1", "1.3.6", "1.3", 1],
    ["0.29.1+ds1-4", "0.29.1", "0.29", 0],
    ["2.40.3-3", "2.40.3", "2.40", 2],
    ["1:10.0.7+ds-0+deb13u1", "10.0.7", "10.0", 1],
    ["0.0~git20261002.cba3570-1", "2026-10-02", "2026-10", 0],
    ["20.19.2+dfsg-1", "20.19.2", "20.19", 20],
    ["6.12.117+deb13-amd64", "6.12.117", "6.12", 6],
    ["26.1.5+dfsg1-9+deb13u1+b1", "26.1.5", "26.1", 26],
  ];
  for (const [deb, upstream, release, major] of cases) {
    assert.equal(upstreamVersion(deb), upstream, deb);
    assert.equal(releaseOf(deb), release, deb);
    if (!deb.includes(":")) assert.equal(majorOf(deb), major, deb);
  }
  assert.equal(majorOf("1:10.0.7"), 10, "the epoch is not the major");
});

/** The README's versions line, split into its guest and image parts: name -> release. */
function readmeVersions(): { guest: Map<string, string>; image: Map<string, string>; line: string } {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const line = /<!-- versions -->(.*?)<!-- \/versions -->/s.exec(readme)?.[1]?.replace(/\s+/g, " ").trim();
  assert.ok(line, "README.md has a <!-- versions --> line");
  const part = (label: string) => {
    const text = new RegExp(`${label}: ([^.]*(?:\\.\\d+[^.]*)*)\\.`).exec(line!)?.[1] ?? "";
    return new Map(text.split(", ").map((item) => [item.slice(0, item.lastIndexOf(" ")), item.slice(item.lastIndexOf(" ") + 1)] as [string, string]));
  };
  return { guest: part("Guest"), image: part("Image"), line: line! };
}

test("the README's versions line names the guest's versions from the build's manifest", (t) => {
  const manifest = join(REPO, "build/guest/manifest.json");
  if (!existsSync(manifest)) return t.skip("no guest build (npm test builds it first)");
  const built = readJsonFile(manifest, GuestManifestSchema);
  assert.ok(built && !(built instanceof Error), String(built));
  const { guest, line } = readmeVersions();
  const expected = guestLine(built.versions, releaseOf);
  const named = [...guest].map(([k, v]) => `${k} ${v}`).join(", ");
  assert.equal(named, expected, `README: ${line}`);
});

test("the README's versions line names the image's docker CLI, buildx and compose as the build fetched them", (t) => {
  const file = join(REPO, "build/clients/versions");
  if (!existsSync(file)) return t.skip("no clients build (npm test builds it first)");
  const fetched = Object.fromEntries(readFileSync(file, "utf8").trim().split("\n").map((l) => l.split("=") as [string, string]));
  const { image } = readmeVersions();
  assert.equal(image.get("docker CLI"), releaseOf(fetched["docker-cli"]!));
  assert.equal(image.get("buildx"), releaseOf(fetched["docker-buildx"]!));
  assert.equal(image.get("compose"), releaseOf(fetched["docker-compose"]!));
});

test("the guest's manifest names a dockerd of major 28 or newer and a containerd of major 2 or newer", (t) => {
  const manifest = join(REPO, "build/guest/manifest.json");
  if (!existsSync(manifest)) return t.skip("no guest build");
  const built = readJsonFile(manifest, GuestManifestSchema);
  assert.ok(built && !(built instanceof Error));
  assert.ok(majorOf(built.versions.dockerd) >= 28, built.versions.dockerd);
  assert.ok(majorOf(built.versions.containerd) >= 2, built.versions.containerd);
});

test("the README line is the rendering of both manifests", () => {
  const guest = { dockerd: "28.5.2+dfsg4-5", containerd: "2.1.9+ds1-5", runc: "1.3.6+ds1-1", kernel: "6.12.117+deb13-amd64", node: "20.19.2+dfsg-1" };
  const image: ImageVersions = { dockerCli: "28.5.2+dfsg4-5", buildx: "0.29.1+ds1-4", compose: "2.40.3-3", qemu: "1:10.0.7+ds-0+deb13u1", virtiofsd: "1.14.0-4", passt: "0.0~git20261002.cba3570-1", node: "20.19.2+dfsg-1" };
  assert.equal(
    readmeVersionsLine(guest, image),
    "Guest: dockerd 28.5, containerd 2.1, runc 1.3, Linux 6.12, Node 20.19. Image: docker CLI 28.5, buildx 0.29, compose 2.40, QEMU 10.0, virtiofsd 1.14, passt 2026-10, Node 20.19.",
  );
});

test("dinv version: the guest's and the image's versions, JSON or text; a planted or malformed file is refused, not followed", () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-version-"));
  const guest = { dockerd: "28.5.2+dfsg4-5", containerd: "2.1.9+ds1-5", runc: "1.3.6+ds1-1", kernel: "6.12.117+deb13-amd64", node: "20.19.2+dfsg-1" };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify({ recipe: "x", versions: guest }));
  const out: string[] = [];
  const err: string[] = [];
  const sink = (a: string[]) => ({ write: (s: string) => a.push(s) });
  const report = versionReport("1.2.3", dir, join(dir, "absent.json"));
  assert.equal(printVersion(report, false, sink(out), sink(err)), 0);
  assert.match(out.join(""), /^dinv 1\.2\.3\nguest: dockerd 28\.5\.2, containerd 2\.1\.9, runc 1\.3\.6, Linux 6\.12\.117, Node 20\.19\.2\nimage: not running from the dinv image/);
  out.length = 0;
  printVersion(report, true, sink(out), sink(err));
  assert.deepEqual(JSON.parse(out.join("")), { dinv: "1.2.3", guest, image: null, problems: [] });
  // A symlink is not followed; a version with a terminal escape is refused by the schema.
  const other = mkdtempSync(join(tmpdir(), "dinv-version-"));
  symlinkSync(join(dir, "manifest.json"), join(other, "manifest.json"));
  const linked = versionReport("1", other, join(dir, "absent.json"));
  assert.equal(linked.guest, null);
  assert.match(linked.problems.join(), /manifest\.json/);
  writeFileSync(join(other, "image.json"), JSON.stringify({ ...guest, dockerCli: "\u001b[31m", buildx: "1", compose: "1", qemu: "1", virtiofsd: "1", passt: "1" }));
  assert.equal(versionReport("1", dir, join(other, "image.json")).image, null);
  assert.equal(printVersion(versionReport("1", other, join(other, "image.json")), false, sink(out), sink(err)), 1, "exit 1 without the guest's versions");
});
