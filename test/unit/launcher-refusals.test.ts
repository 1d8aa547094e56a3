// `dinv run` refusing bad input before it creates or changes any file (in process, no VM).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { EXIT, runLauncher } from "../../host/run/start.js";
import { classifyPid } from "../../host/run/run-dir.js";
import { DiskError, ensureDisk } from "../../host/disk/images.js";
import { BAD_VALUES } from "../helpers/bad-config.js";
import { REPO } from "../helpers/paths.js";

function fakeGuestDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dinv-guest-"));
  for (const f of ["vmlinux", "initramfs.cpio", "rootfs.img"]) writeFileSync(join(dir, f), "x");
  return dir;
}

async function launch(env: Record<string, string>) {
  const base = mkdtempSync(join(tmpdir(), "dinv-refuse-"));
  const lines: string[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void lines.push(l) });
  const dirs = { DINV_DOCKER_DIR: join(base, "docker"), DINV_VOLUME_DIR: join(base, "volume"), DINV_RUN_DIR: join(base, "run") };
  const code = await runLauncher({ env: { ...dirs, DINV_GUEST_DIR: fakeGuestDir(), ...env }, log, defaultGuestDir: "/nonexistent" });
  return { code, base, text: lines.map((l) => JSON.parse(l).msg as string).join("\n") };
}

const table: [string, Record<string, string>, RegExp][] = [
  ["bad CPU count", { DINV_CPUS: "many" }, /DINV_CPUS="many"/],
  ["duplicate ports", { DINV_TCP_PORTS: "8080;8080" }, /DINV_TCP_PORTS="8080;8080": port 8080 is listed twice/],
  ["a mount that does not exist", { DINV_MOUNTS: "/nonexistent/dinv-mount" }, /DINV_MOUNTS: "\/nonexistent\/dinv-mount" does not exist/],
  ["a mount that is a file", { DINV_MOUNTS: "/etc/hostname" }, /DINV_MOUNTS: "\/etc\/hostname" is not a directory/],
  ["a mount path with a newline", { DINV_MOUNTS: "/tmp/a\nb" }, /control character/],
  ["more mounts than microvm has slots", { DINV_MOUNTS: "/srv;/etc;/home;/opt;/mnt" }, /microvm has room for 4/],
  ["a size below the filesystem minimum", { DINV_DOCKER_SIZE: "100M" }, /DINV_DOCKER_SIZE="100M": out of range/],
  ["missing guest files", { DINV_GUEST_DIR: "/nonexistent/guest" }, /guest file \/nonexistent\/guest\/vmlinux is missing/],
  ["reserved daemon.json keys", { DINV_DOCKERD_CONFIG: '{"bip":"10.0.0.1/8"}' }, /sets bip, which dinv sets itself/],
];

for (const [name, value] of BAD_VALUES) {
  test(`dinv run exits 2 and creates nothing for ${name}=${JSON.stringify(value)}`, async () => {
    const { code, base, text } = await launch({ [name]: value });
    assert.equal(code, EXIT.config);
    assert.match(text, new RegExp(`${name}=`));
    assert.deepEqual(readdirSync(base), [], "nothing created");
  });
}

for (const [name, env, message] of table) {
  test(`refused before any file is created: ${name}`, async () => {
    const { code, base, text } = await launch(env);
    assert.equal(code, EXIT.config);
    assert.match(text, message);
    assert.deepEqual(readdirSync(base), [], "nothing created");
  });
}

test("a docker disk that is not qcow2 is refused and left byte for byte as it was", async () => {
  const base = mkdtempSync(join(tmpdir(), "dinv-raw-"));
  mkdirSync(join(base, "docker"));
  const disk = join(base, "docker", "docker.qcow2");
  writeFileSync(disk, Buffer.alloc(1 << 20, 7));
  const before = statSync(disk);
  await assert.rejects(ensureDisk(disk, 2 ** 30, "DINV_DOCKER_SIZE"), (e: unknown) => e instanceof DiskError && /is a raw image, not qcow2; dinv leaves it untouched/.test((e as Error).message));
  const after = statSync(disk);
  assert.equal(after.size, before.size);
  assert.equal(after.mtimeMs, before.mtimeMs);
});

test("a truncated qcow2 is a clear error, never recreated", async () => {
  const base = mkdtempSync(join(tmpdir(), "dinv-trunc-"));
  const disk = join(base, "docker.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "1G"]);
  truncateSync(disk, 100);
  await assert.rejects(ensureDisk(disk, 2 ** 30, "DINV_DOCKER_SIZE"), (e: unknown) => e instanceof DiskError && /is not a readable disk image/.test((e as Error).message));
  assert.equal(statSync(disk).size, 100);
  assert.ok(existsSync(disk));
});

test("pid files: only a live process whose command line names us counts", () => {
  assert.equal(classifyPid(undefined, undefined, "qmp.sock"), "none");
  assert.equal(classifyPid(Number.NaN, undefined, "qmp.sock"), "none");
  assert.equal(classifyPid(1234, undefined, "qmp.sock"), "stale");
  assert.equal(classifyPid(1234, "bash -c sleep", "/run/dinv/qmp.sock"), "stale");
  assert.equal(classifyPid(1234, "qemu-system-x86_64 -chardev socket,id=qmp,path=/run/dinv/qmp.sock", "/run/dinv/qmp.sock"), "live");
});

for (const [name, value] of [["DINV_LOG_LEVEL", "verbose"], ["DINV_LOG_FORMAT", "xml"]] as const) {
  test(`dinv run with ${name}=${value}: exit 2 naming the variable, no stack trace`, () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO, "host/cli/main.ts"), "run"], { env: { PATH: process.env.PATH, [name]: value }, encoding: "utf8" });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${name}="${value}": unknown log (level|format)\\. Allowed: `));
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });
}

for (const [what, create, message] of [
  ["a backing file", (disk: string) => ["create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", disk, "1G"], /names a backing file/],
  ["an external data file", (disk: string) => ["create", "-q", "-f", "qcow2", "-o", `data_file=${disk}.data`, disk, "1G"], /keeps its data in an external file/],
] as const) {
  test(`a docker.qcow2 with ${what} is refused before qemu-img opens it, and left as it was`, async () => {
    const base = mkdtempSync(join(tmpdir(), "dinv-planted-"));
    const disk = join(base, "docker.qcow2");
    execFileSync("qemu-img", create(disk));
    const before = statSync(disk);
    await assert.rejects(ensureDisk(disk, 4 * 2 ** 30, "DINV_DOCKER_SIZE"), (e: unknown) => e instanceof DiskError && message.test((e as Error).message));
    const after = statSync(disk);
    assert.equal(after.size, before.size, "not grown");
    assert.equal(after.mtimeMs, before.mtimeMs);
  });
}

test("a run refused after the root image was unpacked leaves no copy of it in the run directory", async () => {
  const guest = mkdtempSync(join(tmpdir(), "dinv-guest-"));
  for (const f of ["vmlinux", "initramfs.cpio"]) writeFileSync(join(guest, f), "x");
  const image = Buffer.alloc(65536);
  image.writeUInt32LE(0xe0f5e1e2, 1024);
  writeFileSync(join(guest, "rootfs.img"), image);
  execFileSync("zstd", ["-q", "--rm", join(guest, "rootfs.img"), "-o", join(guest, "rootfs.img.zst")]);
  const base = mkdtempSync(join(tmpdir(), "dinv-unpacked-"));
  mkdirSync(join(base, "docker"));
  // A docker disk dinv refuses: the refusal comes after the unpacking started.
  writeFileSync(join(base, "docker", "docker.qcow2"), Buffer.alloc(1 << 20, 7));
  const lines: string[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void lines.push(l) });
  const env = { DINV_GUEST_DIR: guest, DINV_DOCKER_DIR: join(base, "docker"), DINV_RUN_DIR: join(base, "run"), DINV_WARM_START: "off" };
  const code = await runLauncher({ env, log, defaultGuestDir: "/nonexistent" });
  assert.equal(code, EXIT.config, lines.join("\n"));
  assert.match(lines.join("\n"), /is a raw image, not qcow2/);
  assert.equal(existsSync(join(base, "run", "rootfs.img")), false, "the unpacked root image is gone");
});
