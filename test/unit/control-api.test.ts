// Control API over a real unix socket, with no VM: a LauncherState fed by hand.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { ControlClient, UnreachableError } from "../../host/control/client.js";
import { startControlServer } from "../../host/control/server.js";
import { LauncherState, derivePhase } from "../../host/control/state.js";
import { runClientCommand } from "../../host/cli/commands.js";
import type { DinvState } from "../../shared/protocol/control.js";
import type { StatusSnapshot } from "../../shared/protocol/status.js";
import { makeConfig } from "../helpers/make-config.js";

const guest = (seq: number, phase: "booting" | "ready"): StatusSnapshot => ({
  type: "status", seq, at: 1, uptimeMs: 1, bootId: "b", state: { phase },
  steps: [{ name: "ping", state: phase === "ready" ? "ok" : "running", startedMs: 1, ...(phase === "ready" ? { endedMs: 2 } : {}) }],
  ...(phase === "ready" ? { dockerVersion: "20.10.24" } : {}),
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), "dinv-control-"));
  const socket = join(dir, "control.sock");
  const state = new LauncherState(makeConfig({ tcpPorts: [8080], mounts: ["/data"] }));
  const stops: (number | undefined)[] = [];
  const server = await startControlServer(socket, state, {
    stop: (t) => stops.push(t),
    health: async () => (state.phase === "ready" ? { healthy: true, reason: "ok" } : { healthy: false, reason: `dinv is ${state.phase}` }),
  });
  return { dir, socket, state, stops, server };
}

const sink = () => {
  let text = "";
  return { write: (t: string) => void (text += t), get text() { return text; } };
};

test("phase derivation: stopped > stopping > host errors > guest", () => {
  const base = { stopping: false, stopped: false, hostErrors: new Map(), guest: null };
  assert.equal(derivePhase(base), "booting");
  assert.equal(derivePhase({ ...base, guest: guest(1, "ready") }), "ready");
  assert.equal(derivePhase({ ...base, guest: guest(1, "ready"), hostErrors: new Map([["agent", { source: "host" as const, message: "x" }]]) }), "degraded");
  assert.equal(derivePhase({ ...base, guest: guest(1, "ready"), stopping: true }), "stopping");
  assert.equal(derivePhase({ ...base, stopping: true, stopped: true }), "stopped");
});

test("the socket is mode 0660; get-state returns the whole snapshot", async () => {
  const { socket, state, server } = await setup();
  assert.equal(statSync(socket).mode & 0o777, 0o660);
  state.setAccel("tcg");
  state.setGuest(guest(3, "ready"));
  const client = await ControlClient.connect(socket);
  const reply = (await client.request({ type: "get-state" })) as DinvState;
  assert.equal(reply.phase, "ready");
  assert.equal(reply.accel, "tcg");
  assert.equal(reply.dockerVersion, "20.10.24");
  assert.deepEqual(reply.ports, { tcp: [8080], udp: [] });
  assert.deepEqual(reply.mounts, ["/data"]);
  assert.equal(reply.dockerHost, "tcp://127.0.0.1:2375");
  client.close();
  await server.close();
});

test("a late subscriber first gets the full current state, then every change", async () => {
  const { socket, state, server } = await setup();
  state.setAccel("tcg");
  state.setGuest(guest(1, "booting"));
  const client = await ControlClient.connect(socket);
  const seen: DinvState[] = [];
  client.onstate = (s) => seen.push(s);
  await client.request({ type: "subscribe" });
  assert.equal(seen[0]!.phase, "booting");
  assert.equal(seen[0]!.accel, "tcg", "what happened before subscribing is in the first snapshot");
  state.setGuest(guest(2, "ready"));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.at(-1)!.phase, "ready");
  assert.ok(seen.at(-1)!.seq > seen[0]!.seq);
  client.close();
  await server.close();
});

test("malformed and unknown requests get typed errors and the connection keeps serving", async () => {
  const { socket, server } = await setup();
  const ws = new WebSocket(`ws+unix://${socket}:/`);
  await new Promise((r) => ws.once("open", r));
  const replies: { type: string; code?: string }[] = [];
  ws.on("message", (d) => replies.push(JSON.parse(d.toString())));
  ws.send("not json");
  ws.send(JSON.stringify({ type: "format-disk", id: 1 }));
  ws.send(JSON.stringify({ type: "stop", id: 2, timeoutSeconds: -1 }));
  ws.send(JSON.stringify({ type: "get-state", id: 3 }));
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(replies.map((r) => r.code ?? r.type), ["bad-request", "unknown-request", "bad-request", "state"]);
  ws.close();
  await server.close();
});

test("stop is acknowledged and handed to the launcher with its timeout", async () => {
  const { socket, stops, server } = await setup();
  const client = await ControlClient.connect(socket);
  assert.deepEqual(await client.request({ type: "stop", timeoutSeconds: 9 }), { type: "ok", id: 1 });
  assert.deepEqual(stops, [9]);
  client.close();
  await server.close();
});

test("CLI: status and health exit codes follow readiness", async () => {
  const { dir, state, server } = await setup();
  const env = { DINV_RUN_DIR: dir };
  const out = sink();
  assert.equal(await runClientCommand("status", [], env, out, sink()), 1);
  assert.match(out.text, /^dinv: booting/);
  assert.equal(await runClientCommand("health", [], env, sink(), sink()), 1);
  state.setGuest(guest(2, "ready"));
  const json = sink();
  assert.equal(await runClientCommand("status", ["--json"], env, json, sink()), 0);
  assert.equal(JSON.parse(json.text).phase, "ready");
  assert.equal(await runClientCommand("health", [], env, sink(), sink()), 0);
  await server.close();
});

test("CLI: wait returns 0 on ready and 1 with the reason on degraded", async () => {
  const { dir, state, server } = await setup();
  const env = { DINV_RUN_DIR: dir };
  const waiting = runClientCommand("wait", ["--timeout", "10"], env, sink(), sink());
  setTimeout(() => state.setGuest(guest(2, "ready")), 50);
  assert.equal(await waiting, 0);
  state.setHostError("agent", { message: "the guest agent disconnected", hint: "wait" });
  const err = sink();
  assert.equal(await runClientCommand("wait", ["--timeout", "10"], env, sink(), err), 1);
  assert.match(err.text, /degraded: the guest agent disconnected \(hint: wait\)/);
  await server.close();
});

test("CLI: an unreachable launcher is a clear error, and bad options are usage errors", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-none-"));
  await assert.rejects(runClientCommand("status", [], { DINV_RUN_DIR: dir }, sink(), sink()), (e: unknown) => e instanceof UnreachableError && /is `dinv run` running/.test((e as Error).message));
  await assert.rejects(runClientCommand("wait", ["--timeout", "soon"], { DINV_RUN_DIR: dir }, sink(), sink()), /--timeout "soon": expected whole seconds/);
  await assert.rejects(runClientCommand("status", ["--bogus"], { DINV_RUN_DIR: dir }, sink(), sink()), /bogus/);
  const started = Date.now();
  await assert.rejects(runClientCommand("wait", ["--timeout", "1"], { DINV_RUN_DIR: dir }, sink(), sink()), UnreachableError);
  assert.ok(Date.now() - started >= 900, "wait keeps trying to reach the launcher until its timeout");
});

test("the control API also answers on loopback TCP when asked, and the socket takes the configured group", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-control-tcp-"));
  const socket = join(dir, "control.sock");
  const state = new LauncherState(makeConfig());
  const { freePort } = await import("../helpers/dinv-process.js");
  const port = await freePort();
  const server = await startControlServer(socket, state, { stop: () => undefined, health: async () => ({ healthy: false, reason: "" }) }, { gid: 4242, tcpPort: port });
  assert.equal(statSync(socket).gid, 4242);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((r) => ws.once("open", r));
  const reply = new Promise<string>((r) => ws.once("message", (d) => r(d.toString())));
  ws.send(JSON.stringify({ type: "get-state", id: 1 }));
  assert.equal(JSON.parse(await reply).type, "state");
  ws.close();
  await server.close();
});
