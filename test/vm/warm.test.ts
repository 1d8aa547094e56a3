// VM suite: warm start. One saved state (made by `dinv warm save` with an image loaded first), two
// instances restored from it one after the other, each checked to be its own guest; a corrupted
// state, a state whose disk names a backing file and a foreign docker disk are refused; a read-only
// warm directory restores and is never written.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync, closeSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DINV, DinvProcess } from "../helpers/dinv-process.js";
import { docker, testRootTar } from "../helpers/docker-cli.js";
import { WarmMetaSchema } from "../../host/warm/store.js";
import { qemuFeatures } from "../../host/qemu/version.js";

const warmDir = mkdtempSync(join(tmpdir(), "dinv-warm-"));
const env = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_WARM_DIR: warmDir, DINV_ACCEL: "auto", ...extra });

interface Identity {
  bootId: string;
  machineId: string;
  random: string;
  engineId: string;
}

/** What a container of this guest sees of its identity, and how far the guest clock is from ours. */
function identity(host: string): Identity & { clockSkewS: number } {
  const before = Math.floor(Date.now() / 1000);
  const run = docker(host, ["run", "--rm", "-v", "/etc/machine-id:/mid:ro", "-v", "/var/lib/docker/engine-id:/eid:ro", "dinv-test/busybox", "sh", "-c", "cat /proc/sys/kernel/random/boot_id /mid; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s; cat /eid"]);
  const afterS = Math.ceil(Date.now() / 1000);
  assert.equal(run.code, 0, run.stderr);
  const [bootId, machineId, random, date, engineIdFile] = run.stdout.trim().split("\n").map((l) => l.trim());
  const guest = Number(date);
  const clockSkewS = guest < before ? before - guest : guest > afterS ? guest - afterS : 0;
  const info = docker(host, ["info", "--format", "{{.ID}}"]);
  // The engine ID dockerd answers with is the one its data root holds (a restart keeps it).
  assert.equal(info.stdout.trim(), engineIdFile, "docker info's ID is the engine-id file's");
  return { bootId: bootId!, machineId: machineId!, random: random!, engineId: info.stdout.trim(), clockSkewS };
}

describe("warm start: save once, restore twice", () => {
  const instances: DinvProcess[] = [];
  let stateDir = "";
  let mapping = false;

  before(() => {
    const tar = join(warmDir, "..", `root-${process.pid}.tar`);
    writeFileSync(tar, testRootTar());
    // The command's image goes into the saved state: a restored guest has it without a pull.
    const saved = spawnSync(process.execPath, [DINV, "warm", "save", "--", "sh", "-c", `docker import --change 'CMD ["/bin/sh"]' ${tar} dinv-test/busybox:latest`], { env: env(), encoding: "utf8", timeout: 600_000 });
    assert.equal(saved.status, 0, saved.stderr.split("\n").slice(-30).join("\n"));
    assert.match(saved.stderr, /warm state saved in/);
    // This QEMU's version decides whether the state is also a RAM file restores map (8.2 and later).
    mapping = qemuFeatures(execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" })).fileMigration;
    assert.match(saved.stderr, mapping ? /restores map its RAM file/ : /restores read the stream \(QEMU before 8\.2/);
    const states = readdirSync(warmDir).filter((e) => !e.startsWith("."));
    assert.equal(states.length, 1, `one saved state: ${states.join(", ")}`);
    stateDir = join(warmDir, states[0]!);
  });

  after(async () => {
    for (const d of instances) await d.kill();
  });

  /** The saved state copied into a warm directory of its own, to be damaged there. */
  function stateCopy(prefix: string): { bad: string; copy: string } {
    const bad = mkdtempSync(join(tmpdir(), prefix));
    const copy = join(bad, stateDir.split("/").pop()!);
    mkdirSync(copy);
    for (const f of ["meta.json", "state.bin", "docker.qcow2"]) copyFileSync(join(stateDir, f), join(copy, f));
    return { bad, copy };
  }

  /** A run on that warm directory: ready, after a cold boot whose reason matches. */
  async function bootsCold(dir: string, reason: RegExp): Promise<DinvProcess> {
    const dinv = await DinvProcess.create({ DINV_WARM_DIR: dir });
    instances.push(dinv);
    dinv.start();
    const state = await dinv.waitUntilSettled(300);
    assert.equal(state.phase, "ready", dinv.tail());
    assert.equal(state.warm?.start, "cold");
    assert.match(state.warm!.reason, reason);
    return dinv;
  }

  test("dinv warm status: the state fits this configuration and a fresh run restores it", () => {
    const status = spawnSync(process.execPath, [DINV, "warm", "status", "--json"], { env: env(), encoding: "utf8" });
    assert.equal(status.status, 0, status.stderr);
    const out = JSON.parse(status.stdout) as { verdict: string; states: { fits: boolean }[] };
    assert.match(out.verdict, /restores/);
    assert.deepEqual(out.states.map((s) => s.fits), [true]);
    const meta = WarmMetaSchema.parse(JSON.parse(readFileSync(join(stateDir, "meta.json"), "utf8")));
    assert.equal(statSync(join(stateDir, "state.bin")).size, meta.state.bytes);
    // Another shape does not fit, and the verdict names what differs.
    const other = spawnSync(process.execPath, [DINV, "warm", "status", "--json"], { env: env({ DINV_MEMORY: "1G" }), encoding: "utf8" });
    assert.match((JSON.parse(other.stdout) as { verdict: string }).verdict, /boots cold: .*DINV_MEMORY/);
    // Only dockerd's configuration differs: restored, then reconfigured.
    const bip = spawnSync(process.execPath, [DINV, "warm", "status", "--json"], { env: env({ DINV_BIP: "172.29.0.1/16" }), encoding: "utf8" });
    assert.match((JSON.parse(bip.stdout) as { verdict: string }).verdict, /restores .*warm, reconfigured/);
  });

  test("two runs restored from one state are ready at once, have the saved image, and are each their own guest", async () => {
    const seen: (Identity & { readyMs: number })[] = [];
    for (const name of ["first", "second"]) {
      const dinv = await DinvProcess.create({ DINV_WARM_DIR: warmDir });
      instances.push(dinv);
      const t0 = Date.now();
      dinv.start();
      const state = await dinv.waitUntilSettled(120);
      const readyMs = Date.now() - t0;
      assert.equal(state.phase, "ready", dinv.tail());
      assert.equal(state.warm?.start, "warm", `${name}: ${JSON.stringify(state.warm)}\n${dinv.tail()}`);
      assert.match(state.warm!.reason, /random pool reseeded, clock set.*new engine ID \([1-9]\d* copies/);
      assert.match(state.warm!.reason, mapping ? /its RAM file mapped, shared/ : /its stream read \(the state has no RAM file/);
      // "At once": from spawning the launcher, in under half the guest uptime the saved cold boot took to be ready.
      const coldReadyMs = state.steps.find((s) => s.name === "ping" && s.state === "ok")?.endedMs;
      assert.ok(coldReadyMs !== undefined, "the saved boot's steps are carried");
      assert.ok(readyMs < coldReadyMs / 2, `${name}: ready ${readyMs} ms after the launcher started; the saved cold boot was ready at ${coldReadyMs} ms of uptime`);
      const id = identity(dinv.dockerHost);
      assert.ok(id.clockSkewS <= 2, `${name}: the guest clock is ${id.clockSkewS} s off the host's`);
      assert.match(id.bootId, /^[0-9a-f-]{36}$/);
      assert.match(id.machineId, /^[0-9a-f]{32}$/);
      seen.push({ ...id, readyMs });
      console.log(`${name}: ${state.warm!.reason}`);
      const stopped = await dinv.stop();
      assert.equal(stopped.code, 0, `${name}: ${dinv.tail()}`);
    }
    const a = seen[0]!;
    const b = seen[1]!;
    assert.notEqual(a.bootId, b.bootId, "boot_id");
    assert.notEqual(a.machineId, b.machineId, "machine-id");
    assert.notEqual(a.random, b.random, "/dev/urandom");
    assert.match(a.engineId, /^[0-9a-f-]{36}$/);
    assert.notEqual(a.engineId, b.engineId, "dockerd's engine ID");
    console.log(`warm starts ready in ${seen.map((s) => s.readyMs).join(" and ")} ms; engine IDs ${a.engineId}, ${b.engineId}`);
  });

  test("a run with another dockerd configuration (DINV_BIP) restores the state, reconfigured: dockerd restarted with its bridge", async () => {
    const dinv = await DinvProcess.create({ DINV_WARM_DIR: warmDir, DINV_BIP: "172.29.0.1/16" });
    instances.push(dinv);
    dinv.start();
    const state = await dinv.waitUntilSettled(300);
    assert.equal(state.phase, "ready", dinv.tail());
    assert.equal(state.warm?.start, "warm", `${JSON.stringify(state.warm)}\n${dinv.tail()}`);
    assert.match(state.warm!.reason, /^warm, reconfigured: .*reconfigured: dockerd restarted with this run's configuration in \d+ ms$/);
    const bridge = docker(dinv.dockerHost, ["network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"]);
    assert.equal(bridge.stdout.trim(), "172.29.0.1", bridge.stderr);
    const ran = docker(dinv.dockerHost, ["run", "--rm", "dinv-test/busybox", "sh", "-c", "ip route | grep -o 'via [0-9.]*'"]);
    assert.equal(ran.stdout.trim(), "via 172.29.0.1", ran.stderr);
    console.log(`reconfigured: ${state.warm!.reason}`);
    const stopped = await dinv.stop();
    assert.equal(stopped.code, 0, dinv.tail());
  });

  test("a corrupted state (same size, other bytes) boots cold, with a line naming the file", async () => {
    const { bad, copy } = stateCopy("dinv-warm-bad-");
    const fd = openSync(join(copy, "state.bin"), "r+");
    writeSync(fd, Buffer.from("dinv-corrupted"), 0, 14, Math.floor(statSync(join(copy, "state.bin")).size / 2));
    closeSync(fd);
    const dinv = await bootsCold(bad, /state\.bin does not match its meta file/);
    assert.ok(dinv.messages().some((m) => /^warm start: booting cold: .*does not match its meta file/.test(m)), dinv.tail());
    assert.equal(docker(dinv.dockerHost, ["image", "inspect", "dinv-test/busybox"]).code, 0, "the cold boot used the state's (verified) docker disk");
    assert.equal((await dinv.stop()).code, 0, dinv.tail());
  });

  test("a read-only warm directory (a job container's volume) restores, writes nothing there and says it saves none", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root (a read-only bind mount)");
    const ro = mkdtempSync(join(tmpdir(), "dinv-warm-ro-"));
    assert.equal(spawnSync("mount", ["--bind", "-o", "ro", warmDir, ro]).status, 0);
    try {
      const listing = () => readdirSync(ro).sort().join(",");
      const before = listing();
      const dinv = await DinvProcess.create({ DINV_WARM_DIR: ro });
      instances.push(dinv);
      dinv.start();
      const state = await dinv.waitUntilSettled(300);
      assert.equal(state.phase, "ready", dinv.tail());
      assert.equal(state.warm?.start, "warm", JSON.stringify(state.warm));
      assert.equal(docker(dinv.dockerHost, ["image", "inspect", "dinv-test/busybox"]).code, 0);
      assert.equal((await dinv.stop()).code, 0, dinv.tail());
      assert.equal(listing(), before, "nothing written into the read-only directory");
      // A shape with no state there: a cold boot that says it saves none.
      const other = await DinvProcess.create({ DINV_WARM_DIR: ro, DINV_MEMORY: "640M" });
      instances.push(other);
      other.start();
      assert.equal((await other.waitUntilSettled(300)).phase, "ready", other.tail());
      assert.ok(other.messages().some((m) => /^warm start: booting cold: .*DINV_WARM_DIR is read-only, so this run saves none/.test(m)), other.tail());
      assert.equal((await other.stop()).code, 0, other.tail());
      assert.equal(listing(), before);
    } finally {
      spawnSync("umount", [ro]);
    }
  });

  test("a state whose docker disk names a backing file (meta.json rewritten to match) boots cold on a new disk of its own", async () => {
    const { bad, copy } = stateCopy("dinv-warm-backing-");
    const secret = join(bad, "SECRET");
    writeFileSync(secret, Buffer.alloc(1 << 20, 0x53));
    const rebase = spawnSync("qemu-img", ["rebase", "-u", "-f", "qcow2", "-b", secret, "-F", "raw", join(copy, "docker.qcow2")], { encoding: "utf8" });
    assert.equal(rebase.status, 0, rebase.stderr);
    const meta = WarmMetaSchema.parse(JSON.parse(readFileSync(join(copy, "meta.json"), "utf8")));
    const disk = readFileSync(join(copy, "docker.qcow2"));
    meta.disk = { bytes: disk.length, sha256: createHash("sha256").update(disk).digest("hex") };
    writeFileSync(join(copy, "meta.json"), JSON.stringify(meta));
    const dinv = await bootsCold(bad, /docker\.qcow2 names a backing file/);
    const info = spawnSync("qemu-img", ["info", "-U", "--output=json", join(dinv.env.DINV_DOCKER_DIR!, "docker.qcow2")], { encoding: "utf8" });
    assert.equal(info.status, 0, info.stderr);
    assert.equal((JSON.parse(info.stdout) as { "backing-filename"?: string })["backing-filename"], undefined, "the run's disk is a new one, naming no file");
    assert.equal((await dinv.stop()).code, 0, dinv.tail());
  });

  test("a docker disk that is not the state's base is never touched by a restore", async () => {
    const dinv = await DinvProcess.create({ DINV_WARM_DIR: warmDir });
    mkdirSync(dinv.env.DINV_DOCKER_DIR!, { recursive: true });
    const disk = join(dinv.env.DINV_DOCKER_DIR!, "docker.qcow2");
    writeFileSync(disk, Buffer.alloc(1 << 20, 0x5a));
    const digest = () => createHash("sha256").update(readFileSync(disk)).digest("hex");
    const before = digest();
    dinv.start();
    const exit = await dinv.exit!;
    assert.equal(exit.code, 2, dinv.tail());
    assert.ok(dinv.messages().some((m) => m === "warm start: booting cold: the docker disk exists: this run boots with its own data"), dinv.tail());
    assert.equal(digest(), before);
  });
});
