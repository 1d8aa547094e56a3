// The cache's run side without a VM: the guest's part (containers of a generation removed before
// ready, the freeze the host's snapshot waits for and its thaw, the volume driver a job asks
// through), the variables, QEMU's arguments for an overlay, and a planted generation refused.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Agent } from "../../guest/agent.js";
import { answer } from "../../guest/cache/volume-driver.js";
import { GuestSession } from "../../host/guest-link/session.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { CacheJob, jobLayerName } from "../../host/cache/job.js";
import { CACHE_FILES, CacheStore } from "../../host/cache/store.js";
import { generationDirName, keyDirName } from "../../host/cache/key.js";
import { promote } from "../../host/cache/promote.js";
import { ConfigError, parseEnv } from "../../host/config/env.js";
import { buildQemuArgs } from "../../host/qemu/args.js";
import { GuestMessageSchema } from "../../shared/protocol/guest-messages.js";
import { HostMessageSchema } from "../../shared/protocol/host-messages.js";
import { createMemoryPair } from "../../shared/transport.js";
import { makeConfig, makePlan } from "../helpers/make-config.js";
import { FakeSystem } from "../helpers/fake-system.js";

import { clock, silent, until } from "../helpers/agent-clock.js";

function connected(cache = { removeContainers: true, saveRequests: true }) {
  const system = new FakeSystem();
  system.containers = 2;
  const agent = new Agent(system, { bootId: "boot-1", version: "t", clock, dockerdTimeoutMs: 1000, diskCheckMs: 0 });
  const config = guestConfigFor(makeConfig(), undefined, "9p", "slirp", { docker: false, volume: false }, cache);
  const session = new GuestSession(config, silent);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  session.attach(host);
  agent.attach(guest);
  return { system, agent, session };
}

describe("the guest's part", () => {
  test("a generation's containers are removed before ready, and the volume driver is served", async () => {
    const { system, session } = connected();
    await until(() => session.status?.state.phase === "ready", "ready");
    const ping = session.status!.steps.find((s) => s.name === "ping");
    assert.match(ping?.detail ?? "", /2 container\(s\) of the cached job removed/);
    assert.deepEqual(system.calls.filter((c) => c !== "small-free-blocks").slice(-2), ["remove-containers", "cache-driver"]);
  });

  test("no generation below: nothing is removed", async () => {
    const { system, session } = connected({ removeContainers: false, saveRequests: true });
    await until(() => session.status?.state.phase === "ready", "ready");
    assert.ok(!system.calls.includes("remove-containers"));
    assert.equal(system.containers, 2);
  });

  test("a freeze is answered once frozen; the thaw ends it; a freeze never thawed ends by itself", async () => {
    const { system, session } = connected();
    await until(() => session.status?.state.phase === "ready", "ready");
    const frozen = await session.freeze(60_000, 2000);
    assert.equal(frozen.ok, true);
    assert.equal(system.frozen, true);
    assert.equal((await session.freeze(60_000, 2000)).ok, false, "one freeze at a time");
    session.thaw(frozen.id);
    await until(() => !system.frozen, "thawed");
    const again = await session.freeze(100, 2000);
    assert.equal(again.ok, true);
    await until(() => !system.frozen, "thawed by the guest's own timer", 3000);
  });

  test("a job's request through the volume driver reaches the host and its answer comes back", async () => {
    const { system, session } = connected();
    await until(() => session.status?.state.phase === "ready", "ready");
    session.oncachesave = (id) => session.answerCacheSave(id, true, "generation 7 saved");
    assert.deepEqual(await system.cacheDriverSave!(), { ok: true, message: "generation 7 saved" });
    session.oncachesave = (id) => session.answerCacheSave(id, false, "DINV_CACHE_SAVE=off");
    assert.deepEqual(await system.cacheDriverSave!(), { ok: false, message: "DINV_CACHE_SAVE=off" });
  });

  test("the volume driver: Get knows only what it created (or dockerd never calls Create), a save failure is the create's error", async () => {
    const known = new Set<string>();
    const removed: string[] = [];
    let saves = 0;
    const ok = async () => (saves++, { ok: true, message: "saved" });
    assert.deepEqual(await answer("/Plugin.Activate", "", ok, () => undefined, known), { Implements: ["VolumeDriver"] });
    assert.deepEqual(await answer("/VolumeDriver.Get", '{"Name":"save"}', ok, () => undefined, known), { Err: "no such volume" });
    assert.deepEqual(await answer("/VolumeDriver.Create", '{"Name":"save"}', ok, (n) => removed.push(n), known), { Err: "" });
    assert.equal(saves, 1);
    assert.deepEqual(removed, ["save"]);
    assert.equal(((await answer("/VolumeDriver.Get", '{"Name":"save"}', ok, () => undefined, known)) as { Err: string }).Err, "");
    await answer("/VolumeDriver.Remove", '{"Name":"save"}', ok, () => undefined, known);
    assert.equal(known.size, 0);
    const failed = await answer("/VolumeDriver.Create", '{"Name":"x"}', async () => ({ ok: false, message: "no cache" }), () => undefined, known);
    assert.deepEqual(failed, { Err: "dinv cache save failed: no cache" });
    assert.match(((await answer("/VolumeDriver.Mount", '{"Name":"x"}', ok, () => undefined, known)) as { Err: string }).Err, /cannot be mounted/);
    assert.deepEqual(await answer("/VolumeDriver.Create", "not json", ok, () => undefined, known), { Err: "a volume name is needed" });
  });
});

describe("configuration and QEMU's arguments", () => {
  test("the variables: defaults, and each refusal names the variable, the value and what is allowed", () => {
    const config = parseEnv({ DINV_CACHE_DIR: "/cache" }, { guestDir: "/g" });
    assert.deepEqual(config.cache, { dir: "/cache", key: "default", restoreKeys: [], save: "on-stop", maxBytes: 20 * 2 ** 30 });
    assert.equal(parseEnv({}, { guestDir: "/g" }).cache, undefined);
    assert.deepEqual(parseEnv({ DINV_CACHE_DIR: "/cache", DINV_CACHE_RESTORE_KEYS: "main; release/1 ;" }, { guestDir: "/g" }).cache?.restoreKeys, ["main", "release/1"]);
    const refused = (env: Record<string, string>) => {
      try {
        parseEnv(env, { guestDir: "/g" });
      } catch (err) {
        if (err instanceof ConfigError) return err.message;
      }
      return "";
    };
    assert.match(refused({ DINV_CACHE_DIR: "/cache", DINV_CACHE_KEY: "../x" }), /DINV_CACHE_KEY="..\/x": is not a cache key/);
    assert.match(refused({ DINV_CACHE_DIR: "/cache", DINV_CACHE_RESTORE_KEYS: "main;bad key" }), /DINV_CACHE_RESTORE_KEYS=.*"bad key" is not a cache key/);
    assert.match(refused({ DINV_CACHE_DIR: "/cache", DINV_CACHE_SAVE: "always" }), /DINV_CACHE_SAVE="always": must be on-stop or off/);
    assert.match(refused({ DINV_CACHE_DIR: "relative" }), /DINV_CACHE_DIR="relative"/);
    assert.match(refused({ DINV_CACHE_DIR: "/docker/cache" }), /DINV_CACHE_DIR.*overlaps DINV_DOCKER_DIR/);
    assert.match(refused({ DINV_CACHE_DIR: "/cache", DINV_MOUNTS: "/cache/sub" }), /"\/cache\/sub" overlaps DINV_CACHE_DIR/);
  });

  test("an overlay's generation is its read-only backing, named on the command line; no backing otherwise", () => {
    const blockdevs = (args: string[]) => args.flatMap((a, i) => (args[i - 1] === "-blockdev" ? [JSON.parse(a) as Record<string, unknown>] : []));
    const withBase = blockdevs(buildQemuArgs(makeConfig(), makePlan({ dockerDisk: "/docker/cache-job.qcow2", dockerBacking: "/proc/1/fd/9" })));
    assert.deepEqual(withBase[0], { driver: "qcow2", "node-name": "docker-base", "read-only": true, backing: null, file: { driver: "file", filename: "/proc/1/fd/9", "read-only": true } });
    assert.equal(withBase[1]?.backing, "docker-base");
    const plain = blockdevs(buildQemuArgs(makeConfig(), makePlan()));
    assert.equal(plain.length, 1);
    assert.equal(plain[0]?.backing, null);
  });
});

describe("a run's start from the cache", () => {
  const qemuImg = (...args: string[]) => execFileSync("qemu-img", args, { encoding: "utf8" });

  test("the newest generation becomes an overlay's backing (no copy); a docker disk of the run's own keeps the cache out", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dinv-cache-job-"));
    const layer = join(dir, "l.qcow2");
    qemuImg("create", "-q", "-f", "qcow2", layer, "1G");
    const store = await CacheStore.open(join(dir, "cache"));
    await promote(store, { key: "main", chain: { layers: [layer] } });
    await store.close();
    const config = { ...makeConfig(), dockerDir: join(dir, "docker"), cache: { dir: join(dir, "cache"), key: "feature", restoreKeys: ["main"], save: "on-stop" as const, maxBytes: 2 ** 40 } };
    mkdirSync(config.dockerDir);
    const job = await CacheJob.prepare(config, join(config.dockerDir, "docker.qcow2"), false, silent);
    assert.ok(job);
    await job.makeLayer();
    assert.match(job.baseIdentity ?? "", /^main#1@\d+\/\d+$/);
    assert.equal(job.disk, join(config.dockerDir, jobLayerName(0)));
    assert.match(job.backing ?? "", /^\/proc\/\d+\/fd\/\d+$/);
    assert.equal(job.mayFormat, false);
    assert.deepEqual({ key: job.info.key, generation: job.info.generation, restoredFrom: job.info.restoredFrom }, { key: "feature", generation: 1, restoredFrom: "main" });
    assert.match(qemuImg("info", job.disk), /virtual size: 64 GiB/);
    await job.end({ ok: false, why: "test" }, silent);
    assert.ok(!existsSync(job.disk), "the job's overlay goes with the run");
    assert.equal(await CacheJob.prepare(config, join(config.dockerDir, "docker.qcow2"), true, silent), undefined);
  });

  test("a generation whose header names a backing file is refused: the run starts empty and says why", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dinv-cache-planted-gen-"));
    const store = await CacheStore.open(join(dir, "cache"));
    await store.touch("main");
    await store.close();
    const gen = join(dir, "cache", CACHE_FILES.keys, keyDirName("main"), generationDirName(1));
    mkdirSync(gen);
    writeFileSync(join(dir, "secret"), "x");
    qemuImg("create", "-q", "-f", "qcow2", "-F", "raw", "-b", join(dir, "secret"), "-u", join(gen, CACHE_FILES.disk), "1G");
    writeFileSync(join(gen, CACHE_FILES.meta), JSON.stringify({ version: 1, key: "main", createdAtMs: 1, bytes: 1, virtualBytes: 1 }));
    const config = { ...makeConfig(), dockerDir: join(dir, "docker"), cache: { dir: join(dir, "cache"), key: "main", restoreKeys: [], save: "on-stop" as const, maxBytes: 2 ** 40 } };
    mkdirSync(config.dockerDir);
    const warnings: string[] = [];
    const log = pino({ level: "warn" }, { write: (l: string) => void warnings.push((JSON.parse(l) as { msg: string }).msg) });
    const job = await CacheJob.prepare(config, join(config.dockerDir, "docker.qcow2"), false, log);
    assert.equal(job?.backing, undefined);
    assert.equal(job?.mayFormat, true);
    assert.equal(job?.info.generation, null);
    assert.match(warnings.join("\n"), /not using "main" generation 1: its disk names a backing file/);
    await job?.end({ ok: false, why: "test" }, silent);
  });
});
