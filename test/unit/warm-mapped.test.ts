// Warm starts from a template (one RAM file every restore maps privately): QEMU's arguments for
// each memory mode on each supported QEMU, the choice between mapping and reading the stream, and
// the RAM file taken only while it is the very file the save wrote. No VM.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, renameSync, copyFileSync, symlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildQemuArgs, PlanError, ramBlockId } from "../../host/qemu/args.js";
import { qemuFeatures } from "../../host/qemu/version.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { warmShapeOf } from "../../host/warm/plan.js";
import { identityMismatch, mappedRefusal, openMapped } from "../../host/warm/mapped.js";
import { identityOf } from "../../host/warm/template.js";
import { hashFile, WARM_FILES, type WarmMeta } from "../../host/warm/store.js";
import { makeConfig, makePlan } from "../helpers/make-config.js";

const QEMU_72 = qemuFeatures("QEMU emulator version 7.2.15");
const QEMU_10 = qemuFeatures("QEMU emulator version 10.0.2");
const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];
const objects = (args: string[]) => args.filter((_, i) => args[i - 1] === "-object");

test("memory modes: a cold boot makes its own RAM; a mapped restore maps the RAM file private and read-only under the machine's RAM id; a template shares it", () => {
  for (const machine of ["microvm", "q35"] as const) {
    const config = makeConfig({ machine, tcpPorts: [8080] });
    const id = ramBlockId(machine);
    const cold = buildQemuArgs(config, makePlan({ qemu: QEMU_10 }));
    assert.equal(objects(cold).length, 0, `${machine}: no memory backend on a boot`);
    assert.doesNotMatch(after(cold, "-M")!, /memory-backend/);

    const mapped = buildQemuArgs(config, makePlan({ qemu: QEMU_10, incoming: { kind: "mapped", ramPath: "/proc/7/fd/21" }, withholdDockerForward: true }));
    assert.deepEqual(objects(mapped), [`memory-backend-file,id=${id},size=512M,mem-path=/proc/7/fd/21,share=off,readonly=on,rom=off`]);
    assert.match(after(mapped, "-M")!, new RegExp(`,memory-backend=${id.replace(".", "\\.")}$`));
    assert.equal(after(mapped, "-incoming"), "defer", "the device state is given over QMP after x-ignore-shared");
    assert.match(after(mapped, "-netdev")!, /hostfwd=tcp:0\.0\.0\.0:8080-:8080|hostfwd=tcp::8080-:8080|8080-:8080/, "the user's forwards stay");
    assert.ok(mapped.includes("-m") && after(mapped, "-m") === "512M", "-m names the same size as the backend");

    const template = buildQemuArgs(config, makePlan({ qemu: QEMU_10, template: { ramPath: "/w/.saving-x/ram.bin", dockerBytes: 2 ** 36 } }));
    assert.deepEqual(objects(template), [`memory-backend-file,id=${id},size=512M,mem-path=/w/.saving-x/ram.bin,share=on`]);
    assert.equal(after(template, "-incoming"), "defer");
    assert.equal(after(template, "-netdev"), "user,id=net0", "no forward: the run's own QEMU holds those ports");
    const blockdevs = template.filter((_, i) => template[i - 1] === "-blockdev").map((b) => JSON.parse(b) as { driver: string; size?: number });
    assert.deepEqual(blockdevs, [{ driver: "null-co", "node-name": "docker", size: 2 ** 36 }], "the template never opens the docker disk");
  }
});

test("memory modes: QEMU 7.2 cannot map a RAM file privately (no readonly=on,rom=off): the plan is refused, the stream is what it restores", () => {
  assert.throws(() => buildQemuArgs(makeConfig(), makePlan({ qemu: QEMU_72, incoming: { kind: "mapped", ramPath: "/r" } })), PlanError);
  const stream = buildQemuArgs(makeConfig(), makePlan({ qemu: QEMU_72, incoming: { kind: "stream", path: "/w/state.bin" } }));
  assert.equal(after(stream, "-incoming"), "fd:3");
  assert.equal(objects(stream).length, 0);
  // A run with virtio-fs shares never restores (warm starts refuse DINV_MOUNTS); a plan that mixes them is refused.
  assert.throws(() => buildQemuArgs(makeConfig({ mounts: ["/src"] }), makePlan({ qemu: QEMU_10, shares: [{ tag: "m0", path: "/src" }], shareFs: { kind: "virtiofs", sockets: ["/run/v0.sock"] }, incoming: { kind: "mapped", ramPath: "/r" } })), PlanError);
});

const config = makeConfig();
const shape = warmShapeOf(config, guestConfigFor(config), { accel: "tcg", cpuModel: "max", qemu: QEMU_10, guestFiles: "g" });

/** A state directory with a stream, a disk, a RAM file and a device state, and its meta file. */
async function fakeTemplate(): Promise<{ dir: string; meta: WarmMeta }> {
  const dir = mkdtempSync(join(tmpdir(), "dinv-mapped-"));
  for (const [name, body] of [[WARM_FILES.state, "STREAM"], [WARM_FILES.disk, "DISK"], [WARM_FILES.ram, "R".repeat(8192)], [WARM_FILES.devices, "DEVICES"]] as const) writeFileSync(join(dir, name), body, { mode: 0o600 });
  const ram = join(dir, WARM_FILES.ram);
  const meta: WarmMeta = {
    format: 1, shape, savedAt: new Date().toISOString(), pauseMs: 1,
    state: await hashFile(join(dir, WARM_FILES.state)), disk: await hashFile(join(dir, WARM_FILES.disk)),
    mapped: { ram: { ...(await hashFile(ram)), identity: identityOf(statSync(ram, { bigint: true })) }, devices: await hashFile(join(dir, WARM_FILES.devices)) },
  };
  return { dir, meta };
}

test("the choice: mapped only for a state saved as a template and a QEMU of 8.2 or later", async () => {
  const { meta } = await fakeTemplate();
  assert.equal(mappedRefusal(meta, QEMU_10), undefined);
  assert.match(mappedRefusal(meta, QEMU_72)!, /QEMU 7\.2 cannot map/);
  const { mapped: _m, ...streamOnly } = meta;
  assert.match(mappedRefusal(streamOnly, QEMU_10)!, /no RAM file/);
});

test("identity: another inode is a replaced or copied file; another modification or change time is a written one", () => {
  const saved = { ino: "11", mtimeNs: "100", ctimeNs: "200" };
  const rows: [typeof saved, RegExp | undefined][] = [
    [saved, undefined],
    [{ ...saved, ino: "12" }, /another inode/],
    [{ ...saved, mtimeNs: "101" }, /changed after the save/],
    [{ ...saved, ctimeNs: "201" }, /changed after the save/],
  ];
  for (const [now, want] of rows) {
    const got = identityMismatch(saved, now);
    if (want) assert.match(got!, want);
    else assert.equal(got, undefined);
  }
});

test("openMapped: the saved files open; a RAM file written, replaced by a copy, or a planted link are refused (the stream is read instead)", async () => {
  let { dir, meta } = await fakeTemplate();
  const ok = await openMapped(dir, meta, QEMU_10);
  assert.ok("ram" in ok, JSON.stringify(ok));
  assert.match(ok.ram.procPath, /^\/proc\/\d+\/fd\/\d+$/);
  await ok.ram.handle.close();
  await ok.devices.handle.close();

  // Written in place, same size: its times change.
  await new Promise((r) => setTimeout(r, 20));
  writeFileSync(join(dir, WARM_FILES.ram), "X".repeat(8192));
  let refused = await openMapped(dir, meta, QEMU_10);
  assert.match("reason" in refused ? refused.reason : "", /changed after the save/);

  // Replaced by a byte-identical copy: another inode.
  ({ dir, meta } = await fakeTemplate());
  copyFileSync(join(dir, WARM_FILES.ram), join(dir, "copy"));
  renameSync(join(dir, "copy"), join(dir, WARM_FILES.ram));
  refused = await openMapped(dir, meta, QEMU_10);
  assert.match("reason" in refused ? refused.reason : "", /another inode/);

  // A symlink planted for the device state: never followed.
  ({ dir, meta } = await fakeTemplate());
  rmSync(join(dir, WARM_FILES.devices));
  symlinkSync("/etc/passwd", join(dir, WARM_FILES.devices));
  refused = await openMapped(dir, meta, QEMU_10);
  assert.ok("reason" in refused, "a link is refused");
  assert.doesNotMatch(refused.reason, /^$/);
});
