// A warm directory shared by several containers: what one of them plants (a link to a victim file
// for each name the launcher reads or writes, including guessable temporary names; a FIFO; a device;
// an oversized file; another user's file; a disk naming a backing file) against every reader and
// writer of it. The victim never changes, no call hangs (each is bounded here), and each case ends
// in a cold boot's reason or a refusal naming the path.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cachedName, cachedUnpack } from "../../host/boot/unpack-cache.js";
import { diskHeaderRefusal } from "../../host/disk/images.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { qemuFeatures } from "../../host/qemu/version.js";
import { warmShapeOf } from "../../host/warm/plan.js";
import { commitState, copyVerified, findState, hashFile, listStates, openStateFiles, WARM_FILES, type WarmMeta } from "../../host/warm/store.js";
import type { WarmShape } from "../../host/warm/shape.js";
import { openMapped } from "../../host/warm/mapped.js";
import { identityOf } from "../../host/warm/template.js";
import { makeConfig } from "../helpers/make-config.js";

const root = process.getuid?.() === 0;
const shape: WarmShape = warmShapeOf(makeConfig(), guestConfigFor(makeConfig()), { accel: "tcg", cpuModel: "max", tscKhz: 2596142, qemu: qemuFeatures("QEMU emulator version 7.2.15"), guestFiles: "f" });

const bounded = <T>(p: Promise<T>, ms = 5000) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`hung for ${ms} ms`)), ms).unref())]);

/** A warm directory with one valid state, and a victim file outside it. */
async function warmWithState(): Promise<{ warmDir: string; dir: string; victim: string; meta: WarmMeta }> {
  const base = mkdtempSync(join(tmpdir(), "dinv-warm-planted-"));
  const warmDir = join(base, "warm");
  execFileSync("mkdir", [warmDir]);
  const victim = join(base, "victim");
  writeFileSync(victim, "victim\n");
  const save = mkdtempSync(join(warmDir, ".saving-"));
  writeFileSync(join(save, WARM_FILES.state), "STATE-BYTES");
  writeFileSync(join(save, WARM_FILES.disk), "DISK-BYTES");
  writeFileSync(join(save, WARM_FILES.ram), "RAM-BYTES");
  writeFileSync(join(save, WARM_FILES.devices), "DEVICE-BYTES");
  const ram = join(save, WARM_FILES.ram);
  const meta: WarmMeta = {
    format: 1, shape, savedAt: new Date().toISOString(), state: await hashFile(join(save, WARM_FILES.state)), disk: await hashFile(join(save, WARM_FILES.disk)), pauseMs: 1,
    mapped: { ram: { ...(await hashFile(ram)), identity: identityOf(statSync(ram, { bigint: true })) }, devices: await hashFile(join(save, WARM_FILES.devices)) },
  };
  const { dir } = await commitState(warmDir, save, meta);
  return { warmDir, dir, victim, meta };
}

/** The files findState checks; the RAM file and device state are checked when a restore maps them. */
const STORED = [WARM_FILES.meta, WARM_FILES.state, WARM_FILES.disk];
const MAPPED = [WARM_FILES.ram, WARM_FILES.devices];

/** Replace a state file with something planted; findState (or, for a mapped file, openMapped: the stream is read instead) must refuse it by name, at once. */
async function refusedAs(plant: (path: string, victim: string) => void, file: string, reason: RegExp): Promise<void> {
  const { warmDir, dir, victim, meta } = await warmWithState();
  rmSync(join(dir, file));
  plant(join(dir, file), victim);
  const found = (MAPPED as string[]).includes(file)
    ? await bounded(openMapped(dir, meta, qemuFeatures("QEMU emulator version 10.0.2")).then((m) => ("reason" in m ? { ok: false as const, reason: m.reason } : { ok: true as const })))
    : await bounded(findState(warmDir, shape));
  assert.ok(!found.ok, `${file}: refused`);
  assert.ok(found.reason.includes(join(dir, file)), `${file}: the reason names the path: ${found.reason}`);
  assert.match(found.reason, reason);
  assert.equal(readFileSync(victim, "utf8"), "victim\n");
  await bounded(listStates(warmDir));
}

const link = (path: string, victim: string) => symlinkSync(victim, path);
const fifo = (path: string) => execFileSync("mkfifo", [path]);

test("a symlink as meta.json, state.bin, docker.qcow2, ram.bin or devices.bin is not followed", async () => {
  for (const file of [...STORED, ...MAPPED]) await refusedAs(link, file, /symbolic link/);
});

test("a FIFO as any state file hangs nothing", async () => {
  for (const file of [...STORED, ...MAPPED]) await refusedAs(fifo, file, /regular file|FIFO/);
});

test("state.bin as a link to /dev/zero, docker.qcow2 as a device: refused before any read", { skip: !root ? "needs root (mknod)" : false }, async () => {
  await refusedAs((p) => symlinkSync("/dev/zero", p), WARM_FILES.state, /symbolic link/);
  await refusedAs((p) => execFileSync("mknod", [p, "c", "1", "5"]), WARM_FILES.disk, /not a regular file/);
});

test("an oversized meta file, a state of another size than its meta file, another user's disk", { skip: !root ? "needs root (chown)" : false }, async () => {
  await refusedAs((p) => writeFileSync(p, Buffer.alloc(1 << 20, 0x20)), WARM_FILES.meta, /more than/);
  await refusedAs((p) => writeFileSync(p, "STATE-BYTES-AND-MORE"), WARM_FILES.state, /expected 11/);
  await refusedAs((p) => {
    writeFileSync(p, "DISK-BYTES");
    chownSync(p, 4321, 4321);
  }, WARM_FILES.disk, /owned by uid 4321/);
});

test("the restore's copy of the docker disk is written under a random name and linked into place; a planted link at the target is never written through", async () => {
  const { dir, victim, meta } = await warmWithState();
  const files = await openStateFiles(dir, meta);
  const dockerDir = mkdtempSync(join(tmpdir(), "dinv-docker-"));
  symlinkSync(victim, join(dockerDir, "docker.qcow2"));
  await assert.rejects(copyVerified(files.disk, join(dockerDir, "docker.qcow2"), meta.disk), /EEXIST/);
  assert.equal(readFileSync(victim, "utf8"), "victim\n");
  rmSync(join(dockerDir, "docker.qcow2"));
  await copyVerified(files.disk, join(dockerDir, "docker.qcow2"), meta.disk);
  assert.equal(readFileSync(join(dockerDir, "docker.qcow2"), "utf8"), "DISK-BYTES");
  await files.state.handle.close();
  await files.disk.handle.close();
});

test("a saved docker disk whose header names a backing or an external data file is refused by the header check", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-header-"));
  const header = Buffer.alloc(104);
  header.writeUInt32BE(0x514649fb, 0);
  header.writeUInt32BE(3, 4);
  writeFileSync(join(dir, "plain.qcow2"), header);
  assert.equal(await diskHeaderRefusal(join(dir, "plain.qcow2")), undefined);
  const backing = Buffer.from(header);
  backing.writeBigUInt64BE(0x1000n, 8);
  writeFileSync(join(dir, "backing.qcow2"), backing);
  assert.match((await diskHeaderRefusal(join(dir, "backing.qcow2")))!, /backing file/);
  const external = Buffer.from(header);
  external.writeBigUInt64BE(0b100n, 72);
  writeFileSync(join(dir, "external.qcow2"), external);
  assert.match((await diskHeaderRefusal(join(dir, "external.qcow2")))!, /external file/);
});

test("the unpack cache: links planted at the cached name and at guessed temporary names leave the victim unchanged", async () => {
  const base = mkdtempSync(join(tmpdir(), "dinv-unpack-planted-"));
  const cacheDir = join(base, "warm");
  execFileSync("mkdir", [cacheDir]);
  const victim = join(base, "docker.qcow2");
  writeFileSync(victim, "the docker disk\n");
  const source = join(base, "rootfs.img.zst");
  writeFileSync(source, "shipped");
  const s = statSync(source);
  const name = cachedName("rootfs", s.size, s.mtimeMs);
  symlinkSync(victim, join(cacheDir, name));
  for (let pid = 1; pid <= 64; pid++) symlinkSync(victim, join(cacheDir, `${name}.${pid}.tmp`));
  const refused: string[] = [];
  const target = join(base, "run-rootfs.img");
  const got = await bounded(cachedUnpack({
    source, target, cacheDir, prefix: "rootfs", maxBytes: 1 << 20,
    unpack: async (_from, to) => writeFileSync(to, "unpacked root image"),
    usable: async () => true,
    onRefused: (r) => refused.push(r),
  }));
  assert.equal(got, target, "this run unpacked into its own run directory");
  assert.equal(readFileSync(victim, "utf8"), "the docker disk\n");
  assert.match(refused.join("\n"), new RegExp(`${name}: a symbolic link`));
  // The cache now holds a real copy in place of the link; a read-only directory is never written.
  assert.equal(readFileSync(join(cacheDir, name), "utf8"), "unpacked root image");
  assert.ok(!statSync(join(cacheDir, name)).isSymbolicLink());
  rmSync(join(cacheDir, name));
  await cachedUnpack({ source, target: join(base, "t2"), cacheDir, writable: false, prefix: "rootfs", maxBytes: 1 << 20, unpack: async (_f, to) => writeFileSync(to, "x"), usable: async () => true });
  assert.throws(() => statSync(join(cacheDir, name)), /ENOENT/, "not written with writable: false");
});
