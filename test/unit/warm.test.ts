// Warm start, the pure core and the store: the shape key, every mismatch's reason, the plan, the
// state files checked against their meta file, the QEMU arguments of a restore. No VM.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildQemuArgs } from "../../host/qemu/args.js";
import { qemuFeatures } from "../../host/qemu/version.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { planWarm, verifyState, warmShapeOf, type WarmFacts } from "../../host/warm/plan.js";
import { onlyDockerdDiffers, shapeKey, shapeMismatch, warmIneligible, type WarmShape } from "../../host/warm/shape.js";
import { commitState, copyVerified, findState, hashFile, openStateFiles, WARM_FILES, type WarmMeta } from "../../host/warm/store.js";
import { incomingUri, outgoingUri, shellQuote } from "../../host/warm/uri.js";
import { restoreVm } from "../../host/warm/restore.js";
import pino from "pino";
import { makeConfig, makePlan } from "../helpers/make-config.js";

const facts: WarmFacts = { accel: "tcg", cpuModel: "max", tscKhz: 2596142, qemu: qemuFeatures("QEMU emulator version 7.2.15"), guestFiles: "files-1" };
const base = (over: Parameters<typeof makeConfig>[0] = {}, f: Partial<WarmFacts> = {}) => {
  const config = makeConfig(over);
  return warmShapeOf(config, guestConfigFor(config), { ...facts, ...f });
};

// Each row: what changes between the saving run and this one, and the words its reason must name.
const mismatches: [string, WarmShape, RegExp][] = [
  ["memory", base({ memoryBytes: 2 ** 30 }), /DINV_MEMORY/],
  ["vCPUs", base({ cpus: 2 }), /DINV_CPUS/],
  ["machine", base({ machine: "q35" }), /DINV_MACHINE/],
  ["accelerator", base({}, { accel: "kvm" }), /accelerator/],
  ["QEMU version", base({}, { qemu: qemuFeatures("QEMU emulator version 10.0.2") }), /QEMU version/],
  ["guest files", base({}, { guestFiles: "files-2" }), /guest files/],
  ["TSC rate", base({}, { tscKhz: 3000000 }), /TSC/],
  ["ASLR", base({ guestAslr: "on" }), /DINV_GUEST_ASLR/],
  ["docker disk size", base({ dockerSizeBytes: 2 ** 35 }), /DINV_DOCKER_SIZE/],
  ["bridge", base({ bip: "172.20.0.1/16" }), /dockerd's configuration/],
  ["daemon.json", base({ daemonConfig: { "registry-mirrors": ["http://10.0.2.2:5000"] } }), /dockerd's configuration/],
  ["shutdown timeout", base({ shutdownTimeoutSeconds: 30 }), /dockerd's configuration/],
];

for (const [name, current, words] of mismatches) {
  test(`warm shape: a different ${name} is a mismatch with its reason, and another key`, () => {
    const saved = base();
    const reason = shapeMismatch(saved, current);
    assert.ok(reason, "must mismatch");
    assert.match(reason, words);
    assert.notEqual(shapeKey(saved), shapeKey(current));
  });
}

test("warm shape: what a restored guest gets again (socket owner, forwards, log level) is not part of it", () => {
  const saved = base();
  for (const over of [{ dockerSock: { uid: 1000, gid: 1000 } }, { tcpPorts: [8080] }, { log: { level: "debug" as const, format: undefined } }, { publish: { mode: "off" as const, ports: [] } }]) {
    const current = base(over);
    assert.equal(shapeMismatch(saved, current), undefined, JSON.stringify(over));
    assert.equal(shapeKey(saved), shapeKey(current));
  }
  // Under KVM the guest sees the host's CPU (-cpu host): another model is another shape.
  assert.match(shapeMismatch(base({}, { accel: "kvm", cpuModel: "host:aaaa" }), base({}, { accel: "kvm", cpuModel: "host:bbbb" }))!, /host CPU/);
  assert.equal(base({}, { tscKhz: 2596400 }).tscMhz, base().tscMhz, "TSC compared in whole MHz");
});

test("warm eligibility: each shape a state cannot hold gives its reason", () => {
  const ok = { mode: "auto" as const, mounts: 0, volume: false, net: "slirp" as const, tls: false };
  assert.equal(warmIneligible(ok), undefined);
  assert.match(warmIneligible({ ...ok, mode: "off" })!, /DINV_WARM_START=off/);
  assert.match(warmIneligible({ ...ok, mounts: 1 })!, /DINV_MOUNTS/);
  assert.match(warmIneligible({ ...ok, volume: true })!, /DINV_VOLUME_PATH/);
  assert.match(warmIneligible({ ...ok, net: "passt" })!, /passt/);
  assert.match(warmIneligible({ ...ok, tls: true })!, /TLS/);
});

function store() {
  const dir = mkdtempSync(join(tmpdir(), "dinv-warm-test-"));
  return dir;
}

async function saveFake(warmDir: string, shape: WarmShape, state = "STATE-BYTES", disk = "DISK-BYTES"): Promise<string> {
  const save = mkdtempSync(join(warmDir, ".saving-"));
  writeFileSync(join(save, WARM_FILES.state), state);
  writeFileSync(join(save, WARM_FILES.disk), disk);
  const meta: WarmMeta = { format: 1, shape, savedAt: new Date().toISOString(), state: await hashFile(join(save, WARM_FILES.state)), disk: await hashFile(join(save, WARM_FILES.disk)), pauseMs: 400 };
  return (await commitState(warmDir, save, meta)).dir;
}

test("warm plan: restore only with a warm directory, no docker disk yet, and a state of this shape", async () => {
  const warmDir = store();
  const config = makeConfig({ warm: { mode: "auto", dir: warmDir } });
  const shape = base();
  let plan = await planWarm({ config, shape, dockerDiskExists: false });
  assert.deepEqual([plan.kind, plan.kind === "cold" && plan.save], ["cold", true]);
  assert.match((plan as { reason: string }).reason, /no saved state/);
  const dir = await saveFake(warmDir, shape);
  plan = await planWarm({ config, shape, dockerDiskExists: false });
  assert.equal(plan.kind, "restore");
  assert.equal((plan as { dir: string }).dir, dir);
  plan = await planWarm({ config, shape, dockerDiskExists: true });
  assert.deepEqual([plan.kind, (plan as { save: boolean }).save], ["cold", false], "a run with its own docker disk never restores nor saves");
  plan = await planWarm({ config: makeConfig({ warm: { mode: "off", dir: warmDir } }), shape, dockerDiskExists: false });
  assert.match((plan as { reason: string }).reason, /off/);
  plan = await planWarm({ config: makeConfig({ warm: { mode: "auto", dir: join(warmDir, "absent") } }), shape, dockerDiskExists: false });
  assert.match((plan as { reason: string }).reason, /does not exist/);
  // Another shape: cold, and the line names what differs from the newest saved state.
  plan = await planWarm({ config, shape: base({ memoryBytes: 2 ** 30 }), dockerDiskExists: false });
  assert.equal(plan.kind, "cold");
  assert.match((plan as { reason: string }).reason, /DINV_MEMORY/);
});

test("warm plan: a state that differs only in dockerd's configuration is restored and reconfigured; any other difference boots cold", async () => {
  const warmDir = store();
  const config = makeConfig({ warm: { mode: "auto", dir: warmDir } });
  const saved = base();
  const dir = await saveFake(warmDir, saved);
  assert.equal(onlyDockerdDiffers(saved, { ...saved, dockerd: "another" }), true);
  assert.equal(onlyDockerdDiffers(saved, saved), false, "equal shapes need no reconfiguring");
  assert.equal(onlyDockerdDiffers(saved, { ...base({ cpus: 2 }), dockerd: "another" }), false);
  let plan = await planWarm({ config, shape: { ...saved, dockerd: "another" }, dockerDiskExists: false });
  assert.deepEqual([plan.kind, plan.kind === "restore" && plan.reconfigure === true, (plan as { dir: string }).dir], ["restore", true, dir]);
  plan = await planWarm({ config, shape: { ...base({ memoryBytes: 2 ** 30 }), dockerd: "another" }, dockerDiskExists: false });
  assert.equal(plan.kind, "cold");
  // Once a state of the run's own shape exists, it is the one restored, as it is.
  const own = await saveFake(warmDir, { ...saved, dockerd: "another" });
  plan = await planWarm({ config, shape: { ...saved, dockerd: "another" }, dockerDiskExists: false });
  assert.deepEqual([plan.kind, plan.kind === "restore" && plan.reconfigure === true, (plan as { dir: string }).dir], ["restore", false, own]);
});

test("warm store: a truncated, missing or corrupted state is never used", async () => {
  const warmDir = store();
  const shape = base();
  const dir = await saveFake(warmDir, shape, "0123456789");
  const found = await findState(warmDir, shape);
  assert.ok(found.ok);
  // Same length, other bytes: only the digest tells.
  writeFileSync(join(dir, WARM_FILES.state), "0123456780");
  const files = await openStateFiles(dir, found.meta);
  assert.match((await verifyState(files.state, join(dir, WARM_FILES.state), found.meta))!, /does not match its meta file/);
  await files.state.handle.close();
  await files.disk.handle.close();
  // Truncated: the size check in findState already refuses it.
  writeFileSync(join(dir, WARM_FILES.state), "01234");
  const truncated = await findState(warmDir, shape);
  assert.ok(!truncated.ok);
  assert.match(truncated.reason, /5 bytes, expected 10/);
  // A meta file that is not ours.
  writeFileSync(join(dir, WARM_FILES.meta), JSON.stringify({ format: 2 }));
  const foreign = await findState(warmDir, shape);
  assert.ok(!foreign.ok);
  assert.match(foreign.reason, /not a dinv warm-state meta file/);
});

test("warm store: the docker disk is copied only if it is the state's exact base, never over a file", async () => {
  const warmDir = store();
  const dir = await saveFake(warmDir, base(), "S", "the base disk");
  const found = await findState(warmDir, base());
  assert.ok(found.ok);
  const target = join(store(), "docker.qcow2");
  await copyVerified(join(dir, WARM_FILES.disk), target, found.meta.disk);
  assert.equal(readFileSync(target, "utf8"), "the base disk");
  await assert.rejects(copyVerified(join(dir, WARM_FILES.disk), target, found.meta.disk), /EEXIST/, "an existing docker disk is never overwritten");
  writeFileSync(join(dir, WARM_FILES.disk), "another disk!");
  const other = join(store(), "docker.qcow2");
  await assert.rejects(copyVerified(join(dir, WARM_FILES.disk), other, found.meta.disk), /does not match its meta file/);
  assert.equal(existsSync(other), false, "a copy that does not match is removed");
});

test("warm store: a second save of one shape keeps the first (both are equally good)", async () => {
  const warmDir = store();
  const first = await saveFake(warmDir, base(), "first");
  mkdirSync(join(warmDir, "unrelated"));
  const second = await saveFake(warmDir, base(), "second");
  assert.equal(first, second);
  assert.equal(readFileSync(join(first, WARM_FILES.state), "utf8"), "first");
});

test("restore and save arguments: -incoming from fd 3 (QEMU 7.2) or a file: URI (10), the docker API forward withheld, a quoted state path", () => {
  const config = makeConfig();
  const cold = buildQemuArgs(config, makePlan());
  assert.ok(!cold.includes("-incoming"));
  assert.match(cold[cold.indexOf("-netdev") + 1]!, /hostfwd=tcp:127\.0\.0\.1:2375-:2375/);
  const warm = buildQemuArgs(makeConfig({ tcpPorts: [8080] }), makePlan({ incoming: { kind: "stream", path: "/w/k/state.bin" }, withholdDockerForward: true }));
  assert.equal(warm[warm.indexOf("-incoming") + 1], "fd:3");
  const ten = buildQemuArgs(makeConfig(), makePlan({ qemu: qemuFeatures("QEMU emulator version 10.0.2"), incoming: { kind: "stream", path: "/w/k/state.bin" } }));
  assert.equal(ten[ten.indexOf("-incoming") + 1], "file:/w/k/state.bin");
  assert.equal(incomingUri("/a", false), "fd:3");
  assert.equal(outgoingUri("/w/state.bin", true), "file:/w/state.bin");
  const netdev = warm[warm.indexOf("-netdev") + 1]!;
  assert.doesNotMatch(netdev, /:2375-/);
  assert.match(netdev, /hostfwd=tcp:127\.0\.0\.1:8080-:8080/, "the other forwards stay");
  assert.equal(outgoingUri("/var/cache/it's here/state.bin", false), `exec:cat > '/var/cache/it'\\''s here/state.bin'`);
  assert.equal(shellQuote("a b"), "'a b'");
});

test("a restore whose QEMU fails before the state's digest is done reports the digest's finding, the cause", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-restore-"));
  const statePath = join(dir, "state.bin");
  writeFileSync(statePath, "x");
  // A QEMU that fails to load at once (as on a damaged stream); the digest answers 200 ms later.
  const verified = new Promise<string | undefined>((r) => setTimeout(() => r("state.bin does not match its meta file"), 200));
  const result = await restoreVm({
    qemuBinary: "false", args: [], source: { kind: "stream", path: statePath, fileMigration: true }, verified, qmpSocket: join(dir, "qmp.sock"),
    log: pino({ level: "silent" }), renew: async () => ({ ok: true, detail: "" }), sockOwner: { uid: 0, gid: 0 },
    onStart: () => undefined, onConsole: () => undefined, signal: new AbortController().signal,
  });
  assert.deepEqual(result, { ok: false, reason: "state.bin does not match its meta file" });
  // With a digest that matches, QEMU's own failure is the reason.
  const again = await restoreVm({
    qemuBinary: "false", args: [], source: { kind: "stream", path: statePath, fileMigration: true }, verified: Promise.resolve(undefined), qmpSocket: join(dir, "qmp.sock"),
    log: pino({ level: "silent" }), renew: async () => ({ ok: true, detail: "" }), sockOwner: { uid: 0, gid: 0 },
    onStart: () => undefined, onConsole: () => undefined, signal: new AbortController().signal,
  });
  assert.equal(again.ok, false);
  assert.match(again.ok ? "" : again.reason, /QEMU exited \(1\) while restoring/);
});
