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
import { DISK_SERIAL, EARLY_MAY_FORMAT, GUEST_DOCKER_ROOT } from "../../shared/constants.js";
import { renderShellConstants, SHELL_CONSTANTS } from "../../shared/shell-constants.js";
import { DAEMON_JSON, EARLY_CONTAINERD, TLS_DIR, daemonConfig } from "../../shared/daemon-config.js";
import { makeConfig } from "../helpers/make-config.js";
import { REPO } from "../helpers/paths.js";

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

test("the guest scripts take the names they share with the TypeScript from the generated constants, and retype none", () => {
  const rendered = renderShellConstants();
  // The generated file, as the scripts source it, gives back the TypeScript's values.
  const names = Object.keys(SHELL_CONSTANTS);
  const sourced = execFileSync("sh", ["-c", `${rendered}\n${names.map((n) => `printf '%s=%s\\n' ${n} "$${n}"`).join("\n")}`], { encoding: "utf8" });
  for (const [name, value] of Object.entries(SHELL_CONSTANTS)) assert.ok(sourced.includes(`${name}=${value}\n`), name);
  for (const [name, value] of [["serial", "DINV_SERIAL_DOCKER"], ["label", "DINV_LABEL_DOCKER"], ["root", "DINV_DOCKER_ROOT"], ["daemon_json", "DINV_DAEMON_JSON"], ["tls_dir", "DINV_TLS_DIR"], ["containerd_sock", "DINV_EARLY_CONTAINERD"]]) {
    assert.match(readFileSync(join(REPO, "alpine/rootfs/usr/lib/dinv/early-dockerd"), "utf8"), new RegExp(`^${name}=\\$${value}$`, "m"), name);
  }
  assert.equal(EARLY_BOOT_FILES, `/run/${EARLY_BOOT_DIR}/daemon.json`);
  // No script spells a shared value itself.
  const scripts = ["alpine/initramfs/init", ...["early-dockerd", "prep", "init", "baseline-init"].map((f) => `alpine/rootfs/usr/lib/dinv/${f}`)];
  for (const file of scripts) {
    const text = readFileSync(join(REPO, file), "utf8").split("\n").filter((l) => !l.trimStart().startsWith("#")).join("\n");
    for (const value of [DISK_SERIAL.root, DISK_SERIAL.docker, GUEST_DOCKER_ROOT, DAEMON_JSON, TLS_DIR, EARLY_CONTAINERD, "10.0.2.", EARLY_MAY_FORMAT]) {
      assert.ok(!text.includes(value), `${file} retypes ${value}`);
    }
  }
});

test("DINV_EARLY_START: on by default, off on request, anything else refused naming the variable", async () => {
  const { parseEnv, ConfigError } = await import("../../host/config/env.js");
  assert.equal(parseEnv({}, { guestDir: "/g" }).earlyStart, true);
  assert.equal(parseEnv({ DINV_EARLY_START: "off" }, { guestDir: "/g" }).earlyStart, false);
  assert.throws(() => parseEnv({ DINV_EARLY_START: "yes" }, { guestDir: "/g" }), (err: unknown) => err instanceof ConfigError && /DINV_EARLY_START.*"yes".*on or off/s.test(err.message));
});

test("the guest init may format the docker disk only when the launcher says so", () => {
  const allowed = earlyBootFiles(guestConfigFor(makeConfig(), undefined, "9p", "slirp", { docker: true, volume: false }));
  const refused = earlyBootFiles(guestConfigFor(makeConfig()));
  assert.ok("files" in allowed && "files" in refused);
  assert.ok(allowed.files.some((f) => f.path === `${EARLY_BOOT_DIR}/${EARLY_MAY_FORMAT}`));
  assert.ok(!refused.files.some((f) => f.path.endsWith(EARLY_MAY_FORMAT)));
});
