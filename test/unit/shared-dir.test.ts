// The one way the launcher touches a directory another container may write: planted symlinks,
// FIFOs, devices, other users' files, oversized files and a swap after the check, against every
// operation. The victim file outside the directory never changes; no call hangs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { fileRefusal, SharedDir, SharedEntryError } from "../../host/fs/shared-dir.js";

const root = process.getuid?.() === 0;

/** A shared directory and a victim file outside it, with a symlink to the victim under `name`. */
function planted(name: string): { dir: string; victim: string } {
  const base = mkdtempSync(join(tmpdir(), "dinv-shared-"));
  const dir = join(base, "shared");
  mkdirSync(dir);
  const victim = join(base, "victim");
  writeFileSync(victim, "victim\n");
  symlinkSync(victim, join(dir, name));
  return { dir, victim };
}

/** Fails the test instead of hanging it. */
const bounded = <T>(p: Promise<T>, ms = 5000) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`hung for ${ms} ms`)), ms).unref())]);

test("a symlink in place of a file is refused for reading, replaced (not followed) by an atomic write", async () => {
  const { dir, victim } = planted("meta.json");
  const shared = await SharedDir.open(dir);
  await assert.rejects(bounded(shared.openFile("meta.json", { maxBytes: 1024 })), (err: Error) => err instanceof SharedEntryError && /symbolic link/.test(err.message) && err.message.includes(join(dir, "meta.json")));
  await assert.rejects(bounded(shared.readJson("meta.json", z.object({}), 1024)), SharedEntryError);
  await shared.writeAtomic("meta.json", "{}\n");
  assert.equal(readFileSync(victim, "utf8"), "victim\n");
  assert.equal(readFileSync(join(dir, "meta.json"), "utf8"), "{}\n");
  await shared.close();
});

test("guessable temporary names do not matter: every new file is O_EXCL under a random name", async () => {
  const { dir, victim } = planted(".rootfs.tmp");
  for (let pid = 1; pid < 50; pid++) symlinkSync(victim, join(dir, `rootfs.${pid}.tmp`));
  const shared = await SharedDir.open(dir);
  await shared.writeAtomic("rootfs", "the root image");
  assert.equal(readFileSync(victim, "utf8"), "victim\n");
  assert.equal(readFileSync(join(dir, "rootfs"), "utf8"), "the root image");
  assert.equal(readdirSync(dir).filter((f) => f.endsWith(".tmp") && !f.startsWith("rootfs.") && f !== ".rootfs.tmp").length, 0, "no temporary file left");
});

test("a failed write leaves nothing of itself", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-shared-"));
  const shared = await SharedDir.open(dir);
  await assert.rejects(shared.fill("state.bin", 0o600, async (h) => {
    await h.writeFile("partial");
    throw new Error("ENOSPC, say");
  }), /ENOSPC/);
  assert.deepEqual(readdirSync(dir), []);
});

test("a FIFO, a device, another user's file and an oversized file are refused at once, with the path and the reason", { skip: !root ? "needs root (mknod, chown)" : false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-shared-"));
  execFileSync("mkfifo", [join(dir, "fifo")]);
  execFileSync("mknod", [join(dir, "zero"), "c", "1", "5"]);
  writeFileSync(join(dir, "theirs"), "{}");
  chownSync(join(dir, "theirs"), 4321, 4321);
  writeFileSync(join(dir, "big"), Buffer.alloc(4096));
  const shared = await SharedDir.open(dir);
  const cases: [string, RegExp][] = [["fifo", /not a regular file|FIFO/], ["zero", /not a regular file/], ["theirs", /owned by uid 4321/], ["big", /4096 bytes, more than the 1024/]];
  for (const [name, reason] of cases) {
    await assert.rejects(bounded(shared.openFile(name, { maxBytes: 1024 })), (err: Error) => err instanceof SharedEntryError && reason.test(err.message) && err.message.startsWith(join(dir, name)), name);
  }
  await assert.rejects(bounded(shared.openFile("big", { maxBytes: 1 << 20, bytes: 100 })), /4096 bytes, expected 100/);
});

test("a file swapped after the check: what is read is what was checked", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-shared-"));
  writeFileSync(join(dir, "state.bin"), "checked");
  const shared = await SharedDir.open(dir);
  const file = (await shared.openFile("state.bin", { maxBytes: 100 }))!;
  writeFileSync(join(dir, "other"), "swapped");
  renameSync(join(dir, "other"), join(dir, "state.bin"));
  const buf = Buffer.alloc(file.size);
  await file.handle.read(buf, 0, file.size, 0);
  assert.equal(buf.toString(), "checked");
  // Another process reopening procPath gets the checked file too, not the name's new one.
  assert.equal(readFileSync(file.procPath, "utf8"), "checked");
  await file.handle.close();
});

test("a symlinked subdirectory or shared directory is refused; entry names cannot leave the directory", async () => {
  const { dir, victim } = planted("key");
  const base = join(dir, "..");
  mkdirSync(join(base, "elsewhere"));
  symlinkSync(join(base, "elsewhere"), join(dir, "client"));
  const shared = await SharedDir.open(dir);
  await assert.rejects(shared.subdir("client", { create: true }), /symbolic link/);
  await assert.rejects(SharedDir.open(join(dir, "client")), /symbolic link/);
  assert.throws(() => shared.entry("../victim"), SharedEntryError);
  assert.throws(() => shared.entry(".."), SharedEntryError);
  assert.equal(await shared.openFile("absent", { maxBytes: 1 }), undefined);
  assert.ok(existsSync(victim));
});

test("fileRefusal is the one table of what a file must be", () => {
  const st = (isFile: boolean, size: number, uid: number) => ({ isFile: () => isFile, size, uid });
  assert.equal(fileRefusal(st(true, 10, 0), { maxBytes: 10 }, 0), undefined);
  assert.equal(fileRefusal(st(false, 10, 0), { maxBytes: 10 }, 0), "not a regular file");
  assert.match(fileRefusal(st(true, 11, 0), { maxBytes: 10 }, 0)!, /more than/);
  assert.match(fileRefusal(st(true, 10, 5), { maxBytes: 10 }, 0)!, /owned by uid 5/);
  assert.equal(fileRefusal(st(true, 10, 5), { maxBytes: 10, ownOnly: false }, 0), undefined);
  assert.match(fileRefusal(st(true, 9, 0), { maxBytes: 10, bytes: 10 }, 0)!, /expected 10/);
});
