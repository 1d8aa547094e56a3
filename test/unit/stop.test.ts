// Stopping the VM: a guest that reported "stopped" counts as clean even when QEMU then has to be
// ended; a guest that never did is forced. Fake QEMU, no VM.

import { test } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { stopVm } from "../../host/run/stop.js";
import type { QemuProcess } from "../../host/qemu/process.js";

function fakeQemu() {
  let exit: () => void = () => undefined;
  const exited = new Promise<void>((r) => (exit = r));
  const kills: string[] = [];
  const qemu = { exited, kill: (sig: string) => { kills.push(sig); exit(); } } as unknown as QemuProcess;
  return { qemu, kills, exit };
}
const base = { qmpSocket: "/nonexistent/qmp.sock", log: pino({ level: "silent" }), agentSeen: () => true, earlyStart: false, timings: { stoppedGraceMs: 50, quitWaitMs: 50 } };

test("guest powers off by itself: clean, nothing killed", async () => {
  const { qemu, kills, exit } = fakeQemu();
  const result = await stopVm({ ...base, qemu, requestShutdown: () => (setTimeout(exit, 10), true) }, 5, "test");
  assert.equal(result, "clean");
  assert.deepEqual(kills, []);
});

test("guest said stopped but QEMU stays up (seen with passt): ended, and still clean", async () => {
  const { qemu, kills } = fakeQemu();
  const result = await stopVm({ ...base, qemu, requestShutdown: () => true, guestStopped: Promise.resolve() }, 5, "test");
  assert.equal(result, "clean");
  assert.deepEqual(kills, ["SIGKILL"], "QMP is unreachable here, so the fallback kill ends it");
});

test("no agent to ask: forced at once (no wait for a stop that cannot come)", async () => {
  const { qemu, kills } = fakeQemu();
  const result = await stopVm({ ...base, qemu, requestShutdown: () => false }, 5, "test");
  assert.equal(result, "forced");
  assert.deepEqual(kills, ["SIGKILL"]);
});
