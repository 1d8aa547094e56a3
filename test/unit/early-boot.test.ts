// The early start's boot files: when the launcher sends them, what they hold, the cpio archive
// the kernel unpacks (checked by extracting it with cpio(1)), and the names the guest scripts use.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpioNewc, earlyBootFiles, EARLY_BOOT_DIR } from "../../host/boot/early-boot.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { EARLY_BOOT_FILES } from "../../guest/system/early.js";
import { DISK_LABEL, DISK_SERIAL, GUEST_DOCKER_ROOT } from "../../shared/constants.js";
import { DAEMON_JSON, EARLY_CONTAINERD, TLS_DIR, daemonConfig } from "../../shared/daemon-config.js";
import { makeConfig } from "../helpers/make-config.js";
import { REPO } from "../helpers/dinv-process.js";

const fakeTls = { caPem: "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n", server: { certPem: "-----BEGIN CERTIFICATE-----\ns\n-----END CERTIFICATE-----\n", keyPem: "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n" } };

test("early start only when nothing must be mounted before dockerd (restart policies may need it)", () => {
  const table: [string, Parameters<typeof makeConfig>[0], RegExp | "files"][] = [
    ["defaults", {}, "files"],
    ["DINV_MOUNTS", { mounts: ["/src"] }, /DINV_MOUNTS/],
    ["DINV_VOLUME_PATH", { volume: { path: "/data", sizeBytes: 2 ** 30, uid: 0, gid: 0 } }, /volume disk/],
  ];
  for (const [name, overrides, expected] of table) {
    const result = earlyBootFiles(guestConfigFor(makeConfig(overrides)));
    if (expected === "files") assert.ok("files" in result, name);
    else assert.match("reason" in result ? result.reason : "", expected, name);
  }
});

test("daemon.json in the boot files is exactly what the agent renders (it compares before adopting)", () => {
  const guest = guestConfigFor(makeConfig({ daemonConfig: { labels: ["x=1"] } }));
  const result = earlyBootFiles(guest);
  assert.ok("files" in result);
  const file = result.files.find((f) => f.path === `${EARLY_BOOT_DIR}/daemon.json`)!;
  assert.deepEqual(JSON.parse(file.data!), daemonConfig(guest.dockerd, EARLY_CONTAINERD));
  assert.equal(file.mode, 0o600);
  assert.ok(!result.files.some((f) => f.path.includes("tls")), "no TLS files without TLS");
});

test("with TLS the server's files go along, the key readable by root only; never a client or CA key", () => {
  const guest = guestConfigFor(makeConfig({ tls: { certDir: "/certs" } }), fakeTls as never);
  const result = earlyBootFiles(guest);
  assert.ok("files" in result);
  const byPath = Object.fromEntries(result.files.map((f) => [f.path, f]));
  assert.equal(byPath[`${EARLY_BOOT_DIR}/tls/key.pem`]?.mode, 0o600);
  assert.equal(byPath[`${EARLY_BOOT_DIR}/tls/key.pem`]?.data, fakeTls.server.keyPem);
  assert.deepEqual(Object.keys(byPath).filter((p) => p.endsWith(".pem")).sort(), ["ca.pem", "cert.pem", "key.pem"].map((f) => `${EARLY_BOOT_DIR}/tls/${f}`));
});

test("cpioNewc: cpio(1) extracts the same files, contents and modes", () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-cpio-"));
  const archive = cpioNewc([
    { path: "d", mode: 0o700 },
    { path: "d/a.json", mode: 0o600, data: '{"x": "ü"}\n' },
    { path: "d/odd length", mode: 0o644, data: "12345" },
  ]);
  assert.equal(archive.length % 512, 0, "padded to whole blocks");
  writeFileSync(join(dir, "a.cpio"), archive);
  execFileSync("cpio", ["-idm", "--quiet", "-F", join(dir, "a.cpio")], { cwd: dir });
  assert.equal(readFileSync(join(dir, "d/a.json"), "utf8"), '{"x": "ü"}\n');
  assert.equal(readFileSync(join(dir, "d/odd length"), "utf8"), "12345");
  assert.equal(statSync(join(dir, "d/a.json")).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, "d")).mode & 0o777, 0o700);
  assert.throws(() => cpioNewc([{ path: "/etc/passwd", mode: 0o644, data: "" }]), /relative/);
  assert.throws(() => cpioNewc([{ path: "a/../../b", mode: 0o644, data: "" }]), /relative/);
});

test("the guest scripts use the same names as the TypeScript (serial, label, paths)", () => {
  const script = readFileSync(join(REPO, "alpine/rootfs/usr/lib/dinv/early-dockerd"), "utf8");
  for (const [name, value] of [["serial", DISK_SERIAL.docker], ["label", DISK_LABEL.docker], ["root", GUEST_DOCKER_ROOT], ["daemon_json", DAEMON_JSON], ["tls_dir", TLS_DIR], ["containerd_sock", EARLY_CONTAINERD]]) {
    assert.match(script, new RegExp(`^${name}=${value}$`, "m"), name);
  }
  assert.match(script, new RegExp(`^boot=/run/${EARLY_BOOT_DIR}$`, "m"));
  assert.equal(EARLY_BOOT_FILES, `/run/${EARLY_BOOT_DIR}/daemon.json`);
  const initramfs = readFileSync(join(REPO, "alpine/initramfs/init"), "utf8");
  assert.ok(initramfs.includes(`cp -a /${EARLY_BOOT_DIR} /newroot/run/${EARLY_BOOT_DIR}`));
});

test("DINV_EARLY_START: on by default, off on request, anything else refused naming the variable", async () => {
  const { parseEnv, ConfigError } = await import("../../host/config/env.js");
  assert.equal(parseEnv({}, { guestDir: "/g" }).earlyStart, true);
  assert.equal(parseEnv({ DINV_EARLY_START: "off" }, { guestDir: "/g" }).earlyStart, false);
  assert.throws(() => parseEnv({ DINV_EARLY_START: "yes" }, { guestDir: "/g" }), (err: unknown) => err instanceof ConfigError && /DINV_EARLY_START.*"yes".*on or off/s.test(err.message));
});
