// DINV_MOUNTS transports: choosing virtio-fs or 9p, virtiofsd's and QEMU's command lines. Pure.

import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseShareFs } from "../../host/share/choose.js";
import { virtiofsdArgs, virtiofsdFlavour } from "../../host/share/virtiofsd.js";
import { buildQemuArgs } from "../../host/qemu/args.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { shareModules, shareMountArgs } from "../../guest/system/mounts.js";
import { makeConfig, makePlan } from "../helpers/make-config.js";

const usable = { binary: "/usr/libexec/virtiofsd", flavour: "rust" as const, unshareFs: true };
const cDaemon = { binary: "/usr/lib/qemu/virtiofsd", flavour: "c" as const, unshareFs: true };

const cases: [string, Parameters<typeof chooseShareFs>, RegExp | string][] = [
  ["no mounts: nothing to choose", ["auto", 0, undefined], "9p"],
  ["9p asked", ["9p", 2, usable], "9p"],
  ["auto, the Rust virtiofsd usable", ["auto", 1, usable], "virtiofs"],
  ["virtiofs asked, usable", ["virtiofs", 1, usable], "virtiofs"],
  ["auto, QEMU's C virtiofsd (no uid mapping): 9p, mapped, with the reason", ["auto", 1, cDaemon], /^9p: DINV_MOUNTS use 9p \(mapped security model\), not virtio-fs: .*C daemon.*setuid/],
  ["virtiofs asked with the C virtiofsd: virtio-fs, with a warning", ["virtiofs", 1, cDaemon], /^virtiofs: WARNING: DINV_MOUNTS_FS=virtiofs: .*setuid/],
  ["auto, no virtiofsd: 9p with a warning", ["auto", 1, { unshareFs: true }], /^9p: .*virtiofsd is not installed/],
  ["auto, seccomp refuses unshare: 9p with the seccomp hint", ["auto", 1, { ...usable, unshareFs: false }], /^9p: .*unshare\(CLONE_FS\) is refused.*seccomp=dinv-seccomp\.json/],
  ["virtiofs asked but refused: an error naming the variable", ["virtiofs", 1, { ...usable, unshareFs: false }], /^error: DINV_MOUNTS_FS=virtiofs but unshare/],
];

for (const [name, args, expected] of cases) {
  test(`mount transport: ${name}`, () => {
    const c = chooseShareFs(...args);
    const text = c.fs === "error" ? `error: ${c.message}` : `${c.fs}${c.warning ? `: ${c.warning}` : ""}`;
    if (typeof expected === "string") assert.equal(text, expected);
    else assert.match(text, expected);
  });
}

test("C virtiofsd: chroot sandbox (a container has no mount namespaces), rlimit untouched, commas escaped", () => {
  const args = virtiofsdArgs({ tag: "dinv0", path: "/srv/a b,c", socket: "/run/dinv/virtiofs-0.sock" }, "c");
  assert.deepEqual(args, ["--socket-path=/run/dinv/virtiofs-0.sock", "-o", "source=/srv/a b\\,c", "-o", "sandbox=chroot", "-o", "cache=auto", "-o", "modcaps=-mknod", "--rlimit-nofile=0"]);
});

test("Rust virtiofsd: the same settings in its own flags, the path one argument as it is", () => {
  const args = virtiofsdArgs({ tag: "dinv0", path: "/srv/a b,c", socket: "/run/dinv/virtiofs-0.sock" }, "rust");
  assert.deepEqual(args.slice(0, 11), ["--socket-path", "/run/dinv/virtiofs-0.sock", "--shared-dir", "/srv/a b,c", "--sandbox", "chroot", "--cache", "auto", "--rlimit-nofile", "0", "--modcaps=-mknod"]);
  // The guest's root is nobody on the launcher side, and back: no setuid bit on a root-owned file.
  const pairs = args.slice(11).join(" ");
  for (const id of ["uid", "gid"]) {
    assert.ok(pairs.includes(`--translate-${id} squash-guest:0:65534:1`), pairs);
    assert.ok(pairs.includes(`--translate-${id} squash-host:65534:0:1`), pairs);
  }
});

const flavours: [string, string, string | undefined][] = [
  ["Debian 12's C daemon", "virtiofsd version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022", "c"],
  ["Debian 13's Rust daemon", "virtiofsd 1.13.2\n", "rust"],
  ["something else", "usage: virtiofsd [options]", undefined],
  ["nothing", "", undefined],
];
for (const [name, text, expected] of flavours) {
  test(`virtiofsd flavour from --version: ${name}`, () => assert.equal(virtiofsdFlavour(text), expected));
}

const values = (args: string[], flag: string) => args.flatMap((a, i) => (args[i - 1] === flag ? [a] : []));

test("QEMU with virtio-fs: shared memfd RAM, modern virtio-mmio, one vhost-user-fs device per share", () => {
  const config = makeConfig({ mounts: ["/a", "/b"], memoryBytes: 2 ** 30 });
  const args = buildQemuArgs(config, makePlan({ shares: [{ tag: "dinv0", path: "/a" }, { tag: "dinv1", path: "/b" }], shareFs: { kind: "virtiofs", sockets: ["/r/v0.sock", "/r/v1,x.sock"] } }));
  assert.match(values(args, "-M")[0]!, /^microvm,.*,memory-backend=mem$/);
  assert.deepEqual(values(args, "-object"), ["memory-backend-memfd,id=mem,size=1G,share=on"]);
  assert.deepEqual(values(args, "-global"), ["virtio-mmio.force-legacy=false"]);
  assert.ok(values(args, "-chardev").includes("socket,id=vfs1,path=/r/v1,,x.sock"));
  assert.deepEqual(values(args, "-device").filter((d) => d.startsWith("vhost-user-fs")), ["vhost-user-fs-device,chardev=vfs0,tag=dinv0", "vhost-user-fs-device,chardev=vfs1,tag=dinv1"]);
  assert.equal(values(args, "-fsdev").length, 0);
  const q35 = buildQemuArgs(makeConfig({ machine: "q35", mounts: ["/a"] }), makePlan({ shares: [{ tag: "dinv0", path: "/a" }], shareFs: { kind: "virtiofs", sockets: ["/r/v0.sock"] } }));
  assert.equal(values(q35, "-M")[0], "q35,memory-backend=mem");
  assert.ok(values(q35, "-device").includes("vhost-user-fs-pci,chardev=vfs0,tag=dinv0"));
  assert.equal(values(q35, "-global").length, 0);
});

test("QEMU with 9p: private RAM, legacy virtio-mmio untouched, 9p devices", () => {
  const args = buildQemuArgs(makeConfig({ mounts: ["/a"] }), makePlan({ shares: [{ tag: "dinv0", path: "/a" }], shareFs: { kind: "9p" } }));
  assert.equal(values(args, "-object").length, 0);
  assert.equal(values(args, "-global").length, 0);
  assert.doesNotMatch(values(args, "-M")[0]!, /memory-backend/);
  assert.ok(values(args, "-device").includes("virtio-9p-device,fsdev=fs0,mount_tag=dinv0"));
});

test("the guest is told the transport; 9p options only reach 9p mounts", () => {
  const config = makeConfig({ mounts: ["/a"], ninepOptions: "msize=512000" });
  const vfs = guestConfigFor(config, undefined, "virtiofs").shares[0]!;
  assert.deepEqual(shareMountArgs(vfs), ["-t", "virtiofs", "dinv0", "/a"]);
  const ninep = guestConfigFor(config).shares[0]!;
  assert.deepEqual(shareMountArgs(ninep), ["-t", "9p", "-o", "trans=virtio,version=9p2000.L,msize=512000", "dinv0", "/a"]);
  // Loaded on demand, not at boot: 9p needs its virtio transport named, virtio-fs is one module.
  assert.deepEqual(shareModules(vfs), ["virtiofs"]);
  assert.deepEqual(shareModules(ninep), ["9pnet_virtio", "9p"]);
});

test("9p exports with the mapped security model (the guest's setuid bits and device nodes stay in xattrs); DINV_9P_SECURITY=none keeps the original's", () => {
  const shares = [{ tag: "dinv0", path: "/data" }];
  const fsdev = (config: object) => values(buildQemuArgs(makeConfig({ mounts: ["/data"], ...config }), makePlan({ shares })), "-fsdev")[0]!;
  assert.match(fsdev({}), /^local,id=fs0,path=\/data,security_model=mapped-xattr,fmode=0644,dmode=0755$/);
  assert.match(fsdev({ ninepSecurity: "none" }), /security_model=none$/);
});
