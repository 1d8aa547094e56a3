// The shared cache's store, without a VM: key and restore-key choice, generation numbering, two
// promoters racing, a promoter cut short, collection that never removes a generation a process
// holds locked (a real OFD lock, taken by qemu-io as QEMU takes it), planted entries refused.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, readdirSync, existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheKeyProblem, chooseGeneration, generationDirName, generationNumber, keyDirName, nextGeneration } from "../../host/cache/key.js";
import { lockedFiles, lockIdOf } from "../../host/cache/locks.js";
import { collect, KEEP_PER_KEY, planCollection, STALE_PROMOTION_MS } from "../../host/cache/collect.js";
import { CACHE_FILES, CacheStore, type KeyEntry } from "../../host/cache/store.js";
import { chainSpec, promote } from "../../host/cache/promote.js";

const qemuImg = (...args: string[]) => execFileSync("qemu-img", args, { encoding: "utf8" });
const qemuIo = (file: string, cmd: string) => execFileSync("qemu-io", ["-f", "qcow2", "-c", cmd, file], { encoding: "utf8" });

describe("cache keys and the choice of a generation", () => {
  test("a key is 1-128 of letters, digits and ._/-, starting with a letter or digit, with no . or .. part", () => {
    for (const ok of ["main", "proj/feature-1", "a.b_c/D-9", "x".repeat(128)]) assert.equal(cacheKeyProblem(ok), undefined, ok);
    for (const bad of ["", "/abs", ".hidden", "a/../b", "a/./b", "sp ace", "x".repeat(129), "semi;colon", "ünï"]) assert.match(cacheKeyProblem(bad) ?? "", /is not a cache key/, bad);
  });

  test("a key's directory is a digest: no key names a path of its own", () => {
    assert.match(keyDirName("proj/main"), /^k-[0-9a-f]{32}$/);
    assert.notEqual(keyDirName("a"), keyDirName("A"));
    assert.equal(generationNumber(generationDirName(42)), 42);
    assert.equal(generationNumber("gen-1"), undefined);
  });

  test("the key's newest generation, else the first restore key that has one, else empty", () => {
    const known = [{ key: "main", generations: [1, 3, 2] }, { key: "release", generations: [7] }, { key: "none", generations: [] }];
    assert.deepEqual(chooseGeneration("main", ["release"], known), { kind: "generation", key: "main", generation: 3 });
    assert.deepEqual(chooseGeneration("feature", ["none", "release", "main"], known), { kind: "generation", key: "release", generation: 7, restoredFrom: "release" });
    const empty = chooseGeneration("feature", ["none"], known);
    assert.equal(empty.kind, "empty");
    assert.match(empty.kind === "empty" ? empty.reason : "", /no generation of "feature", "none" yet/);
  });

  test("a new generation takes one past the highest present", () => {
    assert.equal(nextGeneration([]), 1);
    assert.equal(nextGeneration([1, 5, 2]), 6);
  });
});

describe("locks as /proc/locks shows them", () => {
  test("OFD and POSIX lines parse to major:minor:inode, a waiter's line too", () => {
    const text = "1: OFDLCK ADVISORY  READ  -1 00:2e:1234 100 100\n2: POSIX  ADVISORY  WRITE 99 fd:01:77 0 EOF\n2: -> POSIX  ADVISORY  WRITE 98 fd:01:78 0 EOF\nnonsense\n";
    assert.deepEqual([...lockedFiles(text)].sort(), ["0:46:1234", "253:1:77", "253:1:78"]);
  });

  test("a stat's device encodes to the same id (major 253, minor 1)", () => {
    assert.equal(lockIdOf((253n << 8n) | 1n, 77n), "253:1:77");
    assert.equal(lockIdOf(0x2en, 1234n), "0:46:1234");
  });
});

/** A store with one key and generations made by the real promotion (tiny qcow2 images with data). */
async function storeWith(dir: string, key: string, count: number): Promise<CacheStore> {
  const store = await CacheStore.open(dir);
  for (let i = 0; i < count; i++) {
    const layer = join(dir, `..`, `layer-${key.replace(/\W/g, "_")}-${i}.qcow2`);
    qemuImg("create", "-q", "-f", "qcow2", layer, "64M");
    qemuIo(layer, `write -P ${i + 1} 0 64k`);
    await promote(store, { key, chain: { layers: [layer] } });
  }
  return store;
}

const entry = (key: string, usedAtMs: number, gens: [number, number][]): KeyEntry => ({
  dirName: keyDirName(key),
  key,
  usedAtMs,
  generations: gens.map(([generation, bytes]) => ({ generation, dev: 1n, ino: BigInt(generation * 1000 + key.length), meta: { version: 1, key, createdAtMs: 0, bytes, virtualBytes: 1 } })),
});

describe("collection, planned", () => {
  const none = () => false;
  test(`a key keeps its ${KEEP_PER_KEY} newest generations`, () => {
    const plan = planCollection([entry("a", 1, [[1, 10], [2, 10], [3, 10], [4, 10], [5, 10]])], { maxBytes: 1e9, locked: none });
    assert.deepEqual(plan.map((r) => r.generation), [2, 1]);
  });
  test("over DINV_CACHE_MAX the least recently used key goes first, oldest generation first", () => {
    const plan = planCollection([entry("new", 200, [[1, 50]]), entry("old", 100, [[1, 30], [2, 30]])], { maxBytes: 60, locked: none });
    assert.deepEqual(plan.map((r) => `${r.key}:${r.generation}`), ["old:1", "old:2"]);
  });
  test("a locked generation and the one just made are never removed", () => {
    const keys = [entry("a", 1, [[1, 10], [2, 10], [3, 10], [4, 10], [5, 10]])];
    const plan = planCollection(keys, { maxBytes: 0, locked: (_dev, ino) => ino === 1001n, keep: { key: "a", generation: 5 } });
    assert.deepEqual(plan.map((r) => r.generation).sort(), [2, 3, 4]);
  });
});

describe("promotion and the store, on real files", () => {
  test("a chain is flattened into a self-contained generation with the chain's data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dinv-cache-unit-"));
    const base = join(dir, "base.qcow2");
    const top = join(dir, "top.qcow2");
    qemuImg("create", "-q", "-f", "qcow2", base, "64M");
    qemuIo(base, "write -P 0xaa 0 128k");
    // The overlay's header names no backing: the chain is said in the json: filename only.
    qemuImg("create", "-q", "-f", "qcow2", top, "64M");
    qemuIo(top, "write -P 0xbb 64k 64k");
    assert.deepEqual(chainSpec({ base, layers: [top] }), { driver: "qcow2", backing: { driver: "qcow2", backing: null, file: { driver: "file", filename: base } }, file: { driver: "file", filename: top } });
    const store = await CacheStore.open(join(dir, "cache"));
    const done = await promote(store, { key: "k", chain: { base, layers: [top] }, from: { key: "k0", generation: 3 } });
    assert.equal(done.generation, 1);
    const disk = join(dir, "cache", CACHE_FILES.keys, keyDirName("k"), generationDirName(1), CACHE_FILES.disk);
    assert.doesNotMatch(qemuImg("info", "-U", disk), /backing file/);
    assert.match(qemuIo(disk, "read -P 0xaa 0 64k"), /read 65536\/65536/);
    assert.match(qemuIo(disk, "read -P 0xbb 64k 64k"), /read 65536\/65536/);
    const [listed] = await store.list();
    assert.equal(listed?.key, "k");
    assert.deepEqual(listed?.generations.map((g) => [g.generation, g.meta.from]), [[1, { key: "k0", generation: 3 }]]);
    assert.deepEqual(readdirSync(join(dir, "cache", CACHE_FILES.tmp)), [], "nothing left in tmp");
    await store.close();
  });

  test("two promoters racing take two numbers; the last complete one is the newest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dinv-cache-race-"));
    const store = await CacheStore.open(join(dir, "cache"));
    const layers = [0, 1].map((i) => {
      const f = join(dir, `l${i}.qcow2`);
      qemuImg("create", "-q", "-f", "qcow2", f, "64M");
      qemuIo(f, `write -P ${i + 1} 0 64k`);
      return f;
    });
    const done = await Promise.all(layers.map((l) => promote(store, { key: "k", chain: { layers: [l] } })));
    assert.deepEqual(done.map((d) => d.generation).sort(), [1, 2]);
    const [listed] = await store.list();
    assert.deepEqual(listed?.generations.map((g) => g.generation), [1, 2]);
    await store.close();
  });

  test("a promotion cut short (a tmp directory, a generation without meta) is never taken, and collected once stale", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dinv-cache-cut-"));
    const store = await storeWith(join(dir, "cache"), "k", 1);
    const keyDir = join(dir, "cache", CACHE_FILES.keys, keyDirName("k"));
    // A promoter killed before its rename: only tmp holds it. A planted generation with a disk and no meta.
    mkdirSync(join(dir, "cache", CACHE_FILES.tmp, "p-0123456789abcdef01"));
    writeFileSync(join(dir, "cache", CACHE_FILES.tmp, "p-0123456789abcdef01", CACHE_FILES.disk), "half");
    mkdirSync(join(keyDir, generationDirName(9)));
    writeFileSync(join(keyDir, generationDirName(9), CACHE_FILES.disk), "no meta");
    const [listed] = await store.list();
    assert.deepEqual(listed?.generations.map((g) => g.generation), [1]);
    assert.deepEqual(chooseGeneration("k", [], CacheStore.generationsOf(await store.list())), { kind: "generation", key: "k", generation: 1 });
    await collect(store, { maxBytes: 1e12, now: Date.now() + 1000 });
    assert.ok(existsSync(join(dir, "cache", CACHE_FILES.tmp, "p-0123456789abcdef01")), "a recent promotion may still be running");
    await collect(store, { maxBytes: 1e12, now: Date.now() + STALE_PROMOTION_MS + 60_000 });
    assert.ok(!existsSync(join(dir, "cache", CACHE_FILES.tmp, "p-0123456789abcdef01")));
    await store.close();
  });

  test("collection never removes a generation a process holds open (QEMU's lock); once released it goes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dinv-cache-lock-"));
    const store = await storeWith(join(dir, "cache"), "k", KEEP_PER_KEY + 1);
    const oldest = join(dir, "cache", CACHE_FILES.keys, keyDirName("k"), generationDirName(1), CACHE_FILES.disk);
    // qemu-io opens the image as QEMU opens a backing file (read-only, locked) and holds it while it sleeps.
    const holder = spawn("qemu-io", ["-r", "-f", "qcow2", "-c", "sleep 20000", oldest], { stdio: "ignore" });
    try {
      for (let i = 0; i < 100 && !lockedFiles(await import("node:fs/promises").then((f) => f.readFile("/proc/locks", "utf8"))).has(lockIdOf(BigInt(statSync(oldest).dev), BigInt(statSync(oldest).ino))); i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await collect(store, { maxBytes: 1e12 }), []);
      assert.ok(existsSync(oldest));
    } finally {
      holder.kill("SIGKILL");
      await new Promise((r) => holder.on("exit", r));
    }
    const removed = await collect(store, { maxBytes: 1e12 });
    assert.deepEqual(removed.map((r) => r.generation), [1]);
    assert.ok(!existsSync(oldest));
    await store.close();
  });

  test("planted entries are not followed: a symlinked key directory, a FIFO disk, a foreign meta", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dinv-cache-planted-"));
    const store = await storeWith(join(dir, "cache"), "k", 1);
    const keys = join(dir, "cache", CACHE_FILES.keys);
    const elsewhere = mkdtempSync(join(tmpdir(), "dinv-cache-elsewhere-"));
    symlinkSync(elsewhere, join(keys, keyDirName("evil")));
    const fifoKey = join(keys, keyDirName("fifo"));
    mkdirSync(join(fifoKey, generationDirName(1)), { recursive: true });
    writeFileSync(join(fifoKey, CACHE_FILES.key), JSON.stringify({ key: "fifo", usedAtMs: 1 }));
    writeFileSync(join(fifoKey, generationDirName(1), CACHE_FILES.meta), JSON.stringify({ version: 1, key: "fifo", createdAtMs: 1, bytes: 1, virtualBytes: 1 }));
    execFileSync("mkfifo", [join(fifoKey, generationDirName(1), CACHE_FILES.disk)]);
    const skipped: string[] = [];
    const listed = await store.list((w) => skipped.push(w));
    assert.deepEqual(listed.map((k) => [k.key, k.generations.length]).sort(), [["fifo", 0], ["k", 1]]);
    assert.ok(skipped.some((s) => /symbolic link/.test(s)), skipped.join("\n"));
    await assert.rejects(store.openDisk("fifo", 1), /not a regular file/);
    await store.close();
  });
});
