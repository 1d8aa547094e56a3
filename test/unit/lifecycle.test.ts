// The launcher's lifecycle against a fake QEMU (test/helpers/fake-qemu.ts), no VM: a stop at every
// phase ends the run within its bound with the right exit code, a protocol mismatch is a clear
// failure, and DINV_ACCEL=kvm never falls back to TCG.

import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { EXIT, runLauncher } from "../../host/run/start.js";
import type { KvmProbe } from "../../host/qemu/accel.js";
import { ControlClient } from "../../host/control/client.js";
import { freePort, REPO } from "../helpers/paths.js";

const FAKE = join(REPO, "test/helpers/fake-qemu.ts");

async function setup(mode: string, env: Record<string, string> = {}) {
  const port = String(await freePort());
  const base = mkdtempSync(join(tmpdir(), "dinv-life-"));
  const guest = join(base, "guest");
  mkdirSync(guest);
  for (const f of ["vmlinux", "initramfs.cpio", "rootfs.img"]) writeFileSync(join(guest, f), "fake");
  const qemu = join(base, "qemu");
  const starts = join(base, "starts");
  writeFileSync(qemu, `#!/bin/sh\nFAKE_QEMU=${mode} FAKE_QEMU_LOG=${starts} exec ${process.execPath} --import tsx ${FAKE} "$@"\n`);
  chmodSync(qemu, 0o755);
  const lines: string[] = [];
  const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l).msg as string) });
  const runDir = join(base, "run");
  const launch = (timings = {}, beforeBoot?: () => Promise<void>, kvmProbe?: KvmProbe) =>
    runLauncher({
      env: { DINV_DOCKER_DIR: join(base, "docker"), DINV_RUN_DIR: runDir, DINV_ACCEL: "tcg", DINV_DOCKER_PORT: port, ...env, PATH: process.env.PATH },
      log,
      defaultGuestDir: guest,
      qemuBinary: qemu,
      timings: { consoleTimeoutMs: 1500, helloWaitMs: 1500, ...timings },
      ...(beforeBoot ? { beforeBoot } : {}),
      ...(kvmProbe ? { kvmProbe } : {}),
    });
  const startedQemus = () => (existsSync(starts) ? readFileSync(starts, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : []);
  const stopViaCli = async () => {
    const client = await ControlClient.connect(join(runDir, "control.sock"), Date.now() + 10_000);
    await client.request({ type: "stop" });
    client.close();
  };
  return { launch, lines, startedQemus, stopViaCli, runDir };
}

const until = async (check: () => boolean, what: string, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test("a stop that arrives before QEMU starts is kept: no QEMU ever runs, exit 0", async () => {
  const t = await setup("agent");
  const t0 = Date.now();
  const code = await t.launch({}, () => t.stopViaCli());
  assert.equal(code, EXIT.ok, t.lines.join("\n"));
  assert.deepEqual(t.startedQemus(), [], "QEMU never started");
  assert.ok(t.lines.includes("stopped before the VM started"));
  assert.ok(Date.now() - t0 < 10_000);
});

test("a stop during a watchdog retry ends the run at once, exit 0 (the guest never reached its initramfs)", async () => {
  const t = await setup("silent");
  const run = t.launch();
  await until(() => t.lines.some((l) => /retrying \(1\/3\)/.test(l)), "the first retry");
  const t0 = Date.now();
  await t.stopViaCli();
  assert.equal(await run, EXIT.ok, t.lines.join("\n"));
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  assert.ok(t.startedQemus().length <= 2, "no attempt after the stop");
});

test("a stop before the hello with the early start: the guest init may have mounted the disk, so no clean exit is claimed (exit 3)", async () => {
  const t = await setup("no-agent");
  const run = t.launch();
  await until(() => t.startedQemus().length === 1 && existsSync(join(t.runDir, "qmp.sock")), "QEMU");
  await new Promise((r) => setTimeout(r, 300));
  await t.stopViaCli();
  assert.equal(await run, EXIT.forced, t.lines.join("\n"));
  assert.ok(t.lines.some((l) => /waiting up to 1\.5 s for the agent/.test(l)));
});

test("a stop before the hello without the early start: nothing is mounted, exit 0", async () => {
  const t = await setup("no-agent", { DINV_EARLY_START: "off" });
  const run = t.launch();
  await until(() => existsSync(join(t.runDir, "qmp.sock")), "QEMU");
  await new Promise((r) => setTimeout(r, 300));
  await t.stopViaCli();
  assert.equal(await run, EXIT.ok, t.lines.join("\n"));
});

test("a stop while dockerd does not answer yet (ping): the agent shuts down cleanly, exit 0", async () => {
  const t = await setup("agent-hangs-in-ping");
  const run = t.launch();
  await until(() => t.lines.includes("guest agent connected"), "the hello");
  await new Promise((r) => setTimeout(r, 200));
  await t.stopViaCli();
  assert.equal(await run, EXIT.ok, t.lines.join("\n"));
  assert.ok(t.lines.some((l) => /^guest stopped: dockerd stopped/.test(l)));
});

test("a guest agent of another protocol version: a clear failure naming both versions, exit 1, promptly", async () => {
  const t = await setup("agent");
  process.env.FAKE_PROTOCOL = "99";
  try {
    const t0 = Date.now();
    assert.equal(await t.launch(), EXIT.failed, t.lines.join("\n"));
    assert.ok(Date.now() - t0 < 20_000);
    assert.ok(t.lines.some((l) => /protocol version/.test(l)));
    assert.ok(!t.lines.some((l) => /KVM cannot run the guest/.test(l)));
  } finally {
    delete process.env.FAKE_PROTOCOL;
  }
});

test("DINV_ACCEL=kvm never falls back to TCG, however long the hello takes", async () => {
  const t = await setup("no-agent", { DINV_ACCEL: "kvm", DINV_EARLY_START: "off" });
  // The probe says KVM works (the fake QEMU never opens the device).
  const run = t.launch({ kvmHelloTimeoutMs: 300 }, undefined, { device: "ok", cpuVirtFlags: true });
  await until(() => existsSync(join(t.runDir, "qmp.sock")), "QEMU");
  await new Promise((r) => setTimeout(r, 1500));
  await t.stopViaCli();
  assert.equal(await run, EXIT.ok, t.lines.join("\n"));
  const starts = t.startedQemus();
  assert.equal(starts.length, 1, "one QEMU, never restarted under TCG");
  assert.equal(starts[0]![starts[0]!.indexOf("-accel") + 1], "kvm");
  assert.ok(!t.lines.some((l) => /falling back to TCG/.test(l)));
});
