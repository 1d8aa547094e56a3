// The kernel the image ships compressed: where its payload is, and the launcher's extraction gives
// exactly the vmlinux the guest build extracts (alpine/lib/kernel.sh).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bzImagePayload, cachedVmlinux, extractVmlinux, KernelError } from "../../host/boot/vmlinux.js";
import { REPO } from "../helpers/paths.js";

test("bzImagePayload finds the first zstd or xz magic, and nothing in a file without one", () => {
  const zstd = Buffer.concat([Buffer.alloc(100, 1), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(10)]);
  assert.deepEqual(bzImagePayload(zstd), { codec: "zstd", offset: 100 });
  const xz = Buffer.concat([Buffer.alloc(7), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from([0x28, 0xb5, 0x2f, 0xfd])]);
  assert.deepEqual(bzImagePayload(xz), { codec: "xz", offset: 7 });
  assert.equal(bzImagePayload(Buffer.alloc(64)), undefined);
});

const built = join(REPO, "build/guest");
test("the launcher's extraction of the shipped vmlinuz is byte for byte the build's vmlinux", { skip: existsSync(join(built, "vmlinuz")) ? false : "no guest built" }, async () => {
  const out = join(mkdtempSync(join(tmpdir(), "dinv-kernel-")), "vmlinux");
  await extractVmlinux(join(built, "vmlinuz"), out);
  const hash = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
  assert.equal(hash(out), hash(join(built, "vmlinux")));
});

test("a file that is no bzImage is a clear error", async () => {
  await assert.rejects(extractVmlinux(join(REPO, "package.json"), join(mkdtempSync(join(tmpdir(), "dinv-kernel-")), "vmlinux")), KernelError);
});

test("with a warm-start directory the kernel is extracted once and then taken from there", { skip: existsSync(join(built, "vmlinuz")) ? false : "no guest built" }, async () => {
  const cache = mkdtempSync(join(tmpdir(), "dinv-kernel-cache-"));
  const hash = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
  const first = join(mkdtempSync(join(tmpdir(), "dinv-kernel-")), "vmlinux");
  assert.equal(await cachedVmlinux(join(built, "vmlinuz"), first, cache), first, "the first run extracts");
  const kept = readdirSync(cache);
  assert.equal(kept.length, 1);
  assert.match(kept[0]!, /^vmlinux-\d+-\d+$/);
  const second = join(mkdtempSync(join(tmpdir(), "dinv-kernel-")), "vmlinux");
  const taken = await cachedVmlinux(join(built, "vmlinuz"), second, cache);
  assert.match(taken, new RegExp(`^/proc/${process.pid}/fd/\\d+$`), "the next run takes the kept one, through its checked descriptor");
  assert.equal(hash(taken), hash(join(cache, kept[0]!)));
  assert.equal(existsSync(second), false);
  // Something that is no kernel under that name is not booted: extracted again (and replaced).
  writeFileSync(join(cache, kept[0]!), "not an ELF");
  assert.equal(await cachedVmlinux(join(built, "vmlinuz"), second, cache), second);
  assert.equal(hash(join(cache, kept[0]!)), hash(join(built, "vmlinux")));
});
