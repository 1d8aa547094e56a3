// The root image the image ships as rootfs.img.zst: the launcher's unpacking gives exactly the build's
// rootfs.img, refuses what is damaged or no filesystem, and is done once where a warm directory keeps it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cachedRootImage, rootFsType, unpackRootImage } from "../../host/boot/root-image.js";
import { BootFileError } from "../../host/boot/unpack-cache.js";
import { REPO } from "../helpers/paths.js";

const hash = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/** A 64 KiB image with the superblock magic `fs` has at byte 1024, zstd-compressed beside it. */
function fakeImage(dir: string, fs: "erofs" | "ext4" | "none"): string {
  const image = Buffer.alloc(65536, 7);
  if (fs === "erofs") image.writeUInt32LE(0xe0f5e1e2, 1024);
  if (fs === "ext4") image.writeUInt16LE(0xef53, 1024 + 56);
  const path = join(dir, `${fs}.img`);
  writeFileSync(path, image);
  assert.equal(spawnSync("zstd", ["-q", "-f", path, "-o", `${path}.zst`]).status, 0);
  return `${path}.zst`;
}

test("rootFsType knows erofs's and ext4's superblock magics and nothing else", () => {
  const erofs = Buffer.alloc(64);
  erofs.writeUInt32LE(0xe0f5e1e2, 0);
  const ext4 = Buffer.alloc(64);
  ext4.writeUInt16LE(0xef53, 56);
  assert.equal(rootFsType(erofs), "erofs");
  assert.equal(rootFsType(ext4), "ext4");
  assert.equal(rootFsType(Buffer.alloc(64)), undefined);
  assert.equal(rootFsType(Buffer.alloc(0)), undefined);
});

const built = join(REPO, "build/guest");
test("the launcher's unpacking of the shipped rootfs.img.zst is byte for byte the build's rootfs.img", { skip: existsSync(join(built, "rootfs.img")) ? false : "no guest built" }, async () => {
  // The image build's archive when there is one, else one made here with the same window (level 1: fast).
  let zst = join(built, "rootfs.img.zst");
  if (!existsSync(zst)) {
    zst = join(tmp("dinv-root-zst-"), "rootfs.img.zst");
    assert.equal(spawnSync("zstd", ["-1", "--long=27", "-T0", "-q", join(built, "rootfs.img"), "-o", zst]).status, 0);
  }
  const out = join(tmp("dinv-root-"), "rootfs.img");
  await unpackRootImage(zst, out);
  assert.equal(hash(out), hash(join(built, "rootfs.img")));
});

test("a damaged archive and one that holds no filesystem are clear errors, and leave no file", async () => {
  const dir = tmp("dinv-root-");
  const good = fakeImage(dir, "erofs");
  const damaged = join(dir, "damaged.zst");
  const bytes = readFileSync(good);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  writeFileSync(damaged, bytes);
  const out = join(dir, "out.img");
  await assert.rejects(unpackRootImage(damaged, out), (err: Error) => err instanceof BootFileError && err.message.includes(damaged));
  assert.equal(existsSync(out), false);
  await assert.rejects(unpackRootImage(fakeImage(dir, "none"), out), /holds neither an erofs nor an ext4 filesystem/);
  assert.equal(existsSync(out), false);
  await unpackRootImage(fakeImage(dir, "ext4"), out);
  assert.equal(rootFsType(readFileSync(out).subarray(1024)), "ext4");
});

test("with a warm-start directory the root image is unpacked once and then taken from there", async () => {
  const dir = tmp("dinv-root-");
  const cache = tmp("dinv-root-cache-");
  const shipped = fakeImage(dir, "erofs");
  const first = join(tmp("dinv-run-"), "rootfs.img");
  assert.equal(await cachedRootImage(shipped, first, cache), first, "the first run unpacks");
  const kept = readdirSync(cache);
  assert.deepEqual(kept.map((n) => /^rootfs-\d+-\d+$/.test(n)), [true]);
  const second = join(tmp("dinv-run-"), "rootfs.img");
  const taken = await cachedRootImage(shipped, second, cache);
  assert.match(taken, new RegExp(`^/proc/${process.pid}/fd/\\d+$`), "the next run takes the kept one, through its checked descriptor");
  assert.equal(hash(taken), hash(join(cache, kept[0]!)));
  assert.equal(existsSync(second), false);
  // What is no filesystem under that name is not booted: unpacked again, and the cache mended.
  writeFileSync(join(cache, kept[0]!), "not a filesystem");
  assert.equal(await cachedRootImage(shipped, second, cache), second);
  assert.equal(hash(join(cache, kept[0]!)), hash(join(dir, "erofs.img")));
  // Without a cache every run unpacks into its own run directory.
  const third = join(tmp("dinv-run-"), "rootfs.img");
  assert.equal(await cachedRootImage(shipped, third, undefined), third);
});
