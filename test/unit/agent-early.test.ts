// The agent and the guest init's early start of dockerd: adopted when it matches, replaced when
// not, never raced when its result is missing. Host session and agent over an in-memory pair.

import { test } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { Agent } from "../../guest/agent.js";
import { parseEarlyResult } from "../../guest/system/early.js";
import { adoptProcess, parseProcStat } from "../../guest/system/adopted.js";
import { spawn } from "node:child_process";
import { GuestSession } from "../../host/guest-link/session.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { GuestMessageSchema } from "../../shared/protocol/guest-messages.js";
import { HostMessageSchema } from "../../shared/protocol/host-messages.js";
import { createMemoryPair } from "../../shared/transport.js";
import { makeConfig } from "../helpers/make-config.js";
import { FakeSystem } from "../helpers/fake-system.js";

const silent = pino({ level: "silent" });
let uptime = 20_000;
const clock = { now: () => 1_700_000_000_000 + uptime, uptimeMs: () => (uptime += 10) };
const started = { state: "started" as const, pid: 321, diskStartMs: 6100, diskMs: 7200, dockerdMs: 7400, detail: "formatted blank disk as ext4 on /dev/vdb, mounted at /var/lib/docker" };

async function boot(system: FakeSystem, config = makeConfig(), net: "slirp" | "passt" = "slirp") {
  const agent = new Agent(system, { bootId: "b", version: "test", clock, dockerdTimeoutMs: 1000 });
  const session = new GuestSession(guestConfigFor(config, undefined, "9p", net), silent);
  const logs: string[] = [];
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  session.attach(host);
  // Listen in on the agent's log messages without taking them from the session.
  const sessionHandler = host.onmessage;
  host.onmessage = (m) => {
    if (m.type === "log") logs.push(`${m.level}: ${m.msg}`);
    sessionHandler?.(m);
  };
  agent.attach(guest);
  void agent.prepare();
  const deadline = Date.now() + 2000;
  while (!["ready", "degraded"].includes(session.status?.state.phase ?? "")) {
    if (Date.now() > deadline) throw new Error("no settled state");
    await new Promise((r) => setTimeout(r, 5));
  }
  return { status: session.status!, logs };
}

test("an early-started dockerd with the same configuration is adopted: no second mkfs, no second dockerd", async () => {
  const system = new FakeSystem();
  system.early = started;
  const { status } = await boot(system);
  assert.equal(status.state.phase, "ready");
  assert.deepEqual(system.calls.filter((c) => c !== "prep" && c !== "small-free-blocks"), ["early", "adopt:321", "ping"]);
  const disks = status.steps.find((s) => s.name === "disks")!;
  assert.match(disks.detail!, /by the guest init/);
  // The timeline shows when the init did the work, not when the agent heard of it.
  assert.deepEqual([disks.startedMs, disks.endedMs], [6100, 7200]);
  const dockerd = status.steps.find((s) => s.name === "dockerd")!;
  assert.equal(dockerd.endedMs, 7400);
  assert.match(dockerd.detail!, /adopted/);
});

test("with passt the agent sets eth0's MTU first, then adopts as usual", async () => {
  const system = new FakeSystem();
  system.early = started;
  const { status } = await boot(system, makeConfig(), "passt");
  assert.equal(status.state.phase, "ready");
  assert.deepEqual(system.calls.filter((c) => c !== "prep" && c !== "small-free-blocks"), ["mtu:65520", "early", "adopt:321", "ping"]);
});

test("an early dockerd whose configuration differs is stopped and replaced, with a warning", async () => {
  const system = new FakeSystem();
  system.early = started;
  system.adoptRefusal = "its daemon.json differs from the configuration the launcher sent";
  const { status, logs } = await boot(system);
  assert.equal(status.state.phase, "ready");
  assert.deepEqual(system.calls.filter((c) => c !== "prep" && c !== "small-free-blocks"), ["early", "adopt:321", "discard:321:5", "dockerd", "ping"]);
  assert.ok(logs.some((l) => /^warn: not adopting .*daemon\.json differs/.test(l)), logs.join("\n"));
});

test("an early start that was skipped leaves the work to the agent, which says why", async () => {
  const system = new FakeSystem();
  system.early = { state: "skipped", reason: "the docker disk is neither blank nor ext4" };
  system.foreignDisk = true;
  const { status, logs } = await boot(system);
  // The agent's own check then reports the disk with its hint.
  assert.equal(status.state.phase, "degraded");
  assert.deepEqual(system.calls.filter((c) => c !== "prep" && c !== "small-free-blocks"), ["early", "disk:dinv-docker"]);
  assert.ok(logs.some((l) => l.includes("left dockerd to the agent: the docker disk is neither blank nor ext4")));
});

test("no usable result from the early start: degraded, and the disk is not touched (never race the init)", async () => {
  const system = new FakeSystem();
  system.early = { state: "invalid", reason: "no result from the init's early start within 180 s" };
  const { status } = await boot(system);
  assert.equal(status.state.phase, "degraded");
  if (status.state.phase !== "degraded") return;
  assert.match(status.state.errors[0]!.message, /early start gave no usable result: no result .* 180 s/);
  assert.deepEqual(system.calls.filter((c) => c !== "prep" && c !== "small-free-blocks"), ["early"]);
});

test("a stop before the config came still stops the dockerd the guest init started, before unmounting", async () => {
  const system = new FakeSystem();
  system.early = started;
  const agent = new Agent(system, { bootId: "b", version: "test", clock, dockerdTimeoutMs: 1000 });
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  agent.attach(guest);
  // The host's side of the end: the stopped state is answered with power-off.
  host.onmessage = (m) => {
    if (m.type === "status" && m.state.phase === "stopped") host.send({ type: "power-off" });
  };
  host.send({ type: "shutdown", timeoutSeconds: 7 });
  const deadline = Date.now() + 2000;
  while (!system.poweredOff) {
    if (Date.now() > deadline) throw new Error("no power-off");
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(system.calls, ["early", "discard:321:7", "stop:7", "unmount", "poweroff"]);
});

test("the early start's result file is parsed strictly", () => {
  const ok = parseEarlyResult("state=started\npid=412\ndisk_start_s=5.91\ndisk_s=7.02\ndockerd_s=7.10\ndetail=mounted existing ext4 on /dev/vdb, mounted at /var/lib/docker\n");
  assert.deepEqual(ok, { state: "started", pid: 412, diskStartMs: 5910, diskMs: 7020, dockerdMs: 7100, detail: "mounted existing ext4 on /dev/vdb, mounted at /var/lib/docker" });
  assert.deepEqual(parseEarlyResult("state=skipped\nreason=mount failed\n"), { state: "skipped", reason: "mount failed" });
  for (const bad of ["", "state=started\npid=1\n", "state=started\npid=abc\ndisk_start_s=1\ndisk_s=1\ndockerd_s=1\ndetail=x", "state=maybe\n"]) {
    assert.equal(parseEarlyResult(bad).state, "invalid", JSON.stringify(bad));
  }
});

test("/proc/PID/stat: state and start time, even with spaces and parentheses in the name", () => {
  const stat = "412 (dockerd (x) y) S 1 412 412 0 -1 4194560 2431 0 0 0 12 7 0 0 20 0 9 0 598 1434288128 9101";
  assert.deepEqual(parseProcStat(stat), { state: "S", startTicks: "598" });
  assert.equal(parseProcStat("garbage"), undefined);
});

test("an adopted process's exit is seen within ~0.1 s of the signal the stop sent, however slow its idle poll", async () => {
  // A real process watched through /proc, as the agent watches the init's dockerd.
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  const adopted = await adoptProcess(child.pid!, 60_000);
  assert.ok(adopted && adopted.running());
  const t0 = performance.now();
  adopted.kill("SIGTERM");
  const how = await adopted.exited;
  const ms = performance.now() - t0;
  assert.match(how, /exit status is not known/);
  assert.ok(ms < 1000, `seen after ${Math.round(ms)} ms (idle poll 60 s)`);
  assert.equal(adopted.running(), false);
});
