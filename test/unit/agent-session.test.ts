// Host session and guest agent together over an in-memory transport pair (real codec).

import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Duplex } from "node:stream";
import pino from "pino";
import { Agent } from "../../guest/agent.js";
import { GuestSession } from "../../host/guest-link/session.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { GuestMessageSchema, type GuestMessage } from "../../shared/protocol/guest-messages.js";
import { HostMessageSchema, type HostMessage } from "../../shared/protocol/host-messages.js";
import type { Phase } from "../../shared/protocol/status.js";
import { createMemoryPair, StreamTransport } from "../../shared/transport.js";
import { makeConfig } from "../helpers/make-config.js";
import { FakeSystem } from "../helpers/fake-system.js";

const silent = pino({ level: "silent" });
let uptime = 0;
const clock = { now: () => 1_700_000_000_000 + uptime, uptimeMs: () => (uptime += 10) };

function setup(system = new FakeSystem(), config = makeConfig()) {
  const agent = new Agent(system, { bootId: "boot-1", version: "test", clock, dockerdTimeoutMs: 1000 });
  const session = new GuestSession(guestConfigFor(config), silent);
  const phases: Phase["phase"][] = [];
  session.onstatus = (s) => phases.push(s.state.phase);
  const connect = () => {
    const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
    session.attach(host);
    agent.attach(guest);
    return { host, guest };
  };
  return { agent, session, system, phases, connect };
}

async function until(check: () => boolean, what: string, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("hello -> config -> disks, dockerd, ping -> ready, as full snapshots", async () => {
  const { agent, session, system, phases, connect } = setup();
  void agent.prepare();
  connect();
  await until(() => session.status?.state.phase === "ready", "ready");
  assert.equal(session.hello?.bootId, "boot-1");
  // Once ready (not during the boot), free page reporting goes down to small blocks.
  await until(() => system.calls.includes("small-free-blocks"), "small free blocks");
  assert.deepEqual(system.calls, ["prep", "early", "disk:dinv-docker", "dockerd", "ping", "small-free-blocks"]);
  const status = session.status!;
  assert.equal(status.dockerVersion, "20.10.24");
  for (const name of ["init", "agent", "config", "disks", "mounts", "dockerd", "ping"]) {
    const step = status.steps.find((s) => s.name === name);
    assert.equal(step?.state, "ok", `step ${name}`);
    assert.ok(step.endedMs! >= step.startedMs!, `step ${name} timing`);
  }
  assert.equal(phases.at(-1), "ready");
  assert.ok(!phases.includes("degraded"));
});

test("a late status request gets the whole current state", async () => {
  const { agent, session, connect } = setup();
  void agent.prepare();
  connect();
  await until(() => session.status?.state.phase === "ready", "ready");
  const seq = session.status!.seq;
  session.status = undefined; // as if the launcher had just joined
  session.requestStatus();
  await until(() => session.status !== undefined, "snapshot");
  assert.equal(session.status!.seq, seq);
  assert.equal(session.status!.state.phase, "ready");
  assert.equal(session.status!.steps.length, 7);
});

test("a foreign filesystem degrades with the reason and a hint; dockerd is not started", async () => {
  const system = new FakeSystem();
  system.foreignDisk = true;
  const { agent, session, connect } = setup(system);
  void agent.prepare();
  connect();
  await until(() => session.status?.state.phase === "degraded", "degraded");
  const state = session.status!.state;
  assert.equal(state.phase, "degraded");
  if (state.phase === "degraded") {
    assert.equal(state.errors[0]!.step, "disks");
    assert.match(state.errors[0]!.message, /xfs/);
    assert.equal(state.errors[0]!.hint, "move it aside");
  }
  assert.ok(!system.calls.includes("dockerd"));
});

test("shutdown stops dockerd with the timeout, unmounts, reports stopped, then powers off", async () => {
  const { agent, session, system, phases, connect } = setup();
  void agent.prepare();
  connect();
  await until(() => session.status?.state.phase === "ready", "ready");
  assert.equal(session.requestShutdown(7), true);
  await until(() => system.poweredOff, "power off");
  assert.deepEqual(system.calls.slice(-3), ["stop:7", "unmount", "poweroff"]);
  await until(() => session.status?.state.phase === "stopped", "stopped");
  assert.deepEqual(phases.slice(-2), ["stopping", "stopped"]);
});

test("a reconnect repeats hello; the config is not applied twice and state survives", async () => {
  const { agent, session, system, connect } = setup();
  void agent.prepare();
  const first = connect();
  await until(() => session.status?.state.phase === "ready", "ready");
  const helloAt = session.hello!.receivedAt;
  const seqBefore = session.status!.seq;
  first.host.close();
  await until(() => !session.connected, "disconnect");
  const second = connect();
  const seen: string[] = [];
  const original = second.host.onmessage!;
  second.host.onmessage = (m) => {
    seen.push(m.type);
    original(m);
  };
  await until(() => session.connected, "reconnect");
  await until(() => seen.includes("hello") && seen.includes("status"), "the second hello and a status");
  // The same boot: the hello is recognised as the agent's again, not a new boot.
  assert.equal(session.hello!.bootId, "boot-1");
  assert.equal(session.hello!.receivedAt, helloAt, "not taken for a new boot");
  assert.ok(session.status!.seq >= seqBefore);
  assert.equal(system.calls.filter((c) => c === "dockerd").length, 1, "the repeated config is not applied again");
  assert.equal(session.status!.state.phase, "ready");
});

test("the host does not configure an agent of another protocol version", async () => {
  const session = new GuestSession(guestConfigFor(makeConfig()), silent);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  const received: HostMessage[] = [];
  guest.onmessage = (m) => received.push(m);
  session.attach(host);
  guest.send({ type: "hello", protocolVersion: 99, bootId: "b", agentVersion: "x", uptimeMs: 1 });
  guest.send({ type: "status", seq: 1, at: 1, uptimeMs: 1, bootId: "b", state: { phase: "ready" }, steps: [] });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(received, []);
  assert.equal(session.status, undefined, "a status without an accepted hello is ignored");
});

test("stale or repeated snapshots never move the state backwards", async () => {
  const session = new GuestSession(guestConfigFor(makeConfig()), silent);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  session.attach(host);
  const snap = (seq: number, phase: "booting" | "ready") => ({ type: "status" as const, seq, at: 1, uptimeMs: 1, bootId: "b", state: { phase }, steps: [] });
  guest.send({ type: "hello", protocolVersion: 1, bootId: "b", agentVersion: "x", uptimeMs: 1 });
  guest.send(snap(5, "ready"));
  guest.send(snap(4, "booting"));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(session.status?.state.phase, "ready");
});

test("StreamTransport frames messages over a byte stream and survives garbage between them", async () => {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  const hostSide = Duplex.from({ readable: bToA, writable: aToB });
  const guestSide = Duplex.from({ readable: aToB, writable: bToA });
  const host = new StreamTransport<GuestMessage, HostMessage>(hostSide, GuestMessageSchema);
  const guest = new StreamTransport<HostMessage, GuestMessage>(guestSide, HostMessageSchema);
  const got: GuestMessage[] = [];
  const rejects: string[] = [];
  host.onmessage = (m) => got.push(m);
  host.onreject = (r) => rejects.push(r);
  guest.send({ type: "log", level: "info", msg: "one" });
  bToA.write(Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b])); // a frame of broken JSON
  guest.send({ type: "log", level: "info", msg: "two" });
  await until(() => got.length === 2, "two messages");
  assert.deepEqual(got.map((m) => (m.type === "log" ? m.msg : "")), ["one", "two"]);
  assert.equal(rejects.length, 1);
  await guest.drain();
  host.close();
  guest.close();
});

test("dockerd dying after boot: degraded with the reason, restarted, ready again; bounded retries", async () => {
  const system = new FakeSystem();
  const agent = new Agent(system, { bootId: "boot-1", version: "t", clock, dockerdTimeoutMs: 1000, maxDockerdRestarts: 2, restartDelayMs: () => 10, diskCheckMs: 0 });
  const session = new GuestSession(guestConfigFor(makeConfig()), silent);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  session.attach(host);
  agent.attach(guest);
  await until(() => session.status?.state.phase === "ready", "ready");
  system.killDockerd("signal SIGKILL");
  await until(() => session.status?.state.phase === "degraded", "degraded");
  const state = session.status!.state;
  assert.ok(state.phase === "degraded" && /dockerd exited \(signal SIGKILL\); restarting it \(attempt 1 of 2\)/.test(state.errors[0]!.message));
  await until(() => session.status?.state.phase === "ready", "ready after restart");
  assert.equal(system.calls.filter((c) => c === "dockerd").length, 2);
  system.killDockerd("exit code 1");
  await until(() => system.calls.filter((c) => c === "dockerd").length === 3, "second restart");
  await until(() => session.status?.state.phase === "ready", "ready after second restart");
  system.killDockerd("exit code 1");
  await until(() => session.status?.state.phase === "degraded" && /giving up/.test(JSON.stringify(session.status.state)), "gave up");
  assert.equal(system.calls.filter((c) => c === "dockerd").length, 3, "no restart beyond the bound");
});

test("a full docker disk degrades with a hint and recovers when space is freed, without a reboot", async () => {
  const system = new FakeSystem();
  const agent = new Agent(system, { bootId: "boot-1", version: "t", clock, dockerdTimeoutMs: 1000, diskCheckMs: 10 });
  const session = new GuestSession(guestConfigFor(makeConfig()), silent);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  session.attach(host);
  agent.attach(guest);
  await until(() => session.status?.state.phase === "ready", "ready");
  system.freeBytes = 10 * 2 ** 20;
  await until(() => session.status?.state.phase === "degraded", "degraded");
  const state = session.status!.state;
  assert.ok(state.phase === "degraded");
  assert.match(state.errors[0]!.message, /docker disk is full: 10 MiB free of 20480 MiB/);
  assert.match(state.errors[0]!.hint ?? "", /docker system prune/);
  system.freeBytes = 5 * 2 ** 30;
  await until(() => session.status?.state.phase === "ready", "ready again");
  session.requestShutdown(1);
  await until(() => system.poweredOff, "power off");
});

test("a shutdown while dockerd has not answered yet ends that wait at once: stopped, never degraded", async () => {
  const system = new FakeSystem();
  system.dockerdHangs = true;
  const { agent, session, phases, connect } = setup(system);
  void agent.prepare();
  connect();
  await until(() => system.calls.includes("ping"), "waiting for dockerd");
  const asked = Date.now();
  assert.equal(session.requestShutdown(5), true);
  await until(() => system.poweredOff, "power off", 1000);
  assert.ok(Date.now() - asked < 1000, "the wait for dockerd (up to its timeout) did not hold the shutdown");
  await until(() => session.status?.state.phase === "stopped", "stopped");
  assert.ok(!phases.includes("degraded"), phases.join(" "));
  const ping = session.status!.steps.find((s) => s.name === "ping");
  assert.equal(ping?.state, "failed");
  assert.match(ping!.detail!, /shutdown came before dockerd answered/);
  assert.deepEqual(system.calls.slice(-3), ["stop:5", "unmount", "poweroff"]);
});

test("a stopped guest powers off only once the host has its stopped state (power-off), or after its bound", async () => {
  const system = new FakeSystem();
  const agent = new Agent(system, { bootId: "boot-1", version: "test", clock, dockerdTimeoutMs: 1000, powerOffWaitMs: 600 });
  const session = new GuestSession(guestConfigFor(makeConfig()), silent);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  const sent: HostMessage["type"][] = [];
  const send = host.send.bind(host);
  host.send = (m: HostMessage) => {
    sent.push(m.type);
    // The host's power-off is held back: the guest must wait for it, not race its last state.
    if (m.type !== "power-off") send(m);
  };
  session.attach(host);
  agent.attach(guest);
  void agent.prepare();
  await until(() => session.status?.state.phase === "ready", "ready");
  const asked = Date.now();
  session.requestShutdown(5);
  await until(() => session.status?.state.phase === "stopped", "stopped");
  assert.ok(sent.includes("power-off"), "the host answers the stopped state with power-off");
  assert.equal(system.poweredOff, false, "no power-off before the host's answer");
  await until(() => system.poweredOff, "power off after the bound", 2000);
  assert.ok(Date.now() - asked >= 550, "without the answer the guest waited its bound");
});
