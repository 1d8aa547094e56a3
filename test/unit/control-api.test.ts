// Control API over a real unix socket, with no VM: a LauncherState fed by hand.

import { test } from "node:test";
import { randomBytes } from "node:crypto";
import { createConnection, type Socket } from "node:net";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { ControlClient, UnreachableError } from "../../host/control/client.js";
import { MAX_SUBSCRIBER_BACKLOG, startControlServer } from "../../host/control/server.js";
import { LauncherState } from "../../host/control/state.js";
import { runClientCommand } from "../../host/cli/commands.js";
import type { DinvState } from "../../shared/protocol/control.js";
import type { StatusSnapshot } from "../../shared/protocol/status.js";
import { makeConfig } from "../helpers/make-config.js";

const guest = (seq: number, phase: "booting" | "ready"): StatusSnapshot => ({
  type: "status", seq, at: 1, uptimeMs: 1, bootId: "b", state: { phase },
  steps: [{ name: "ping", state: phase === "ready" ? "ok" : "running", startedMs: 1, ...(phase === "ready" ? { endedMs: 2 } : {}) }],
  ...(phase === "ready" ? { dockerVersion: "20.10.24" } : {}),
});

/** The guest's ready snapshot, and the run's state that follows it. */
function ready(state: LauncherState, seq: number): void {
  state.setGuest(guest(seq, "ready"));
  state.setRun({ phase: "ready", at: 1, reason: "dockerd answers", accel: "tcg" });
}

/** A WebSocket connection done by hand on the unix socket, for bytes no WebSocket client sends. */
async function rawUpgrade(socketPath: string): Promise<Socket> {
  const sock = createConnection(socketPath);
  sock.on("error", () => undefined);
  await new Promise((r) => sock.once("connect", r));
  sock.write(["GET / HTTP/1.1", "Host: localhost", "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`, "Sec-WebSocket-Version: 13", "", ""].join("\r\n"));
  let head = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      head += b.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      sock.off("data", onData);
      if (head.startsWith("HTTP/1.1 101")) resolve();
      else reject(new Error(head.split("\r\n")[0]));
    };
    sock.on("data", onData);
  });
  return sock;
}

/** One masked text frame, as a client must send it (payload under 64 KiB). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const len = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([len, mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
}

/** `promise`, or a failure naming what did not happen within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), "dinv-control-"));
  const socket = join(dir, "control.sock");
  const state = new LauncherState(makeConfig({ tcpPorts: [8080], mounts: ["/data"] }));
  const stops: (number | undefined)[] = [];
  const server = await startControlServer(socket, state, {
    stop: (t) => stops.push(t),
    health: async () => (state.phase === "ready" ? { healthy: true, reason: "ok" } : { healthy: false, reason: `dinv is ${state.phase}` }),
    cacheSave: async () => ({ ok: false, message: "no cache: DINV_CACHE_DIR is not set" }),
  });
  return { dir, socket, state, stops, server };
}

const sink = () => {
  let text = "";
  return { write: (t: string) => void (text += t), get text() { return text; } };
};

test("the socket is mode 0660; get-state returns the whole snapshot", async () => {
  const { socket, state, server } = await setup();
  assert.equal(statSync(socket).mode & 0o777, 0o660);
  state.setAccel("tcg");
  ready(state, 3);
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
  ready(state, 2);
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
  ready(state, 2);
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
  setTimeout(() => ready(state, 2), 50);
  assert.equal(await waiting, 0);
  state.setHostError("agent", { message: "the guest agent disconnected", hint: "wait" });
  const err = sink();
  assert.equal(await runClientCommand("wait", ["--timeout", "10"], env, sink(), err), 1);
  assert.match(err.text, /degraded: the guest agent disconnected \(hint: wait\)/);
  await server.close();
});

test("CLI: a failed run reaches wait, status and events with its reason", async () => {
  const { dir, state, server } = await setup();
  const env = { DINV_RUN_DIR: dir };
  const events = sink();
  const streaming = runClientCommand("events", ["--json"], env, events, sink());
  const waiting = runClientCommand("wait", ["--timeout", "10"], env, sink(), sink());
  const waitErr = sink();
  const waitingErr = runClientCommand("wait", ["--timeout", "10"], env, sink(), waitErr);
  await new Promise((r) => setTimeout(r, 100));
  state.setRun({ phase: "failed", at: 2, reason: "QEMU exited unexpectedly (guest crash or power-off)", code: 1 });
  assert.equal(await waiting, 1);
  await waitingErr;
  assert.match(waitErr.text, /dinv wait: failed: QEMU exited unexpectedly/);
  const out = sink();
  assert.equal(await runClientCommand("status", [], env, out, sink()), 1);
  assert.match(out.text, /^dinv: failed: QEMU exited unexpectedly/);
  await server.close();
  assert.equal(await streaming, 0);
  const last = JSON.parse(events.text.trim().split("\n").at(-1)!) as DinvState;
  assert.deepEqual([last.phase, last.reason], ["failed", "QEMU exited unexpectedly (guest crash or power-off)"]);
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

test("the control API also answers on loopback TCP, with the token from the run directory; the socket takes the configured group", async () => {
  const { dir, port, server } = await tcpSetup();
  assert.equal(statSync(join(dir, "control.sock")).gid, 4242);
  assert.equal(statSync(join(dir, "control.token")).mode & 0o777, 0o600);
  const token = readFileSync(join(dir, "control.token"), "utf8").trim();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { Authorization: `Bearer ${token}` } });
  await new Promise((r) => ws.once("open", r));
  const reply = new Promise<string>((r) => ws.once("message", (d) => r(d.toString())));
  ws.send(JSON.stringify({ type: "get-state", id: 7 }));
  const state = JSON.parse(await reply);
  assert.equal(state.type, "state");
  assert.equal(state.id, 7, "the reply names its request");
  ws.close();
  await server.close();
});

async function tcpSetup() {
  const dir = mkdtempSync(join(tmpdir(), "dinv-control-tcp-"));
  const state = new LauncherState(makeConfig());
  const { freePort } = await import("../helpers/paths.js");
  const port = await freePort();
  const stops: number[] = [];
  const server = await startControlServer(join(dir, "control.sock"), state, { stop: () => stops.push(1), health: async () => ({ healthy: false, reason: "" }), cacheSave: async () => ({ ok: false, message: "" }) }, { gid: 4242, tcpPort: port, tokenFile: join(dir, "control.token") });
  return { dir, port, server, state, stops };
}

/** Open a WebSocket and say how it ended: "open", or the error the server's answer gave. */
function attempt(url: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => {
      ws.close();
      resolve("open");
    });
    ws.once("error", (err) => resolve(err.message));
  });
}

test("the TCP listener refuses a missing or wrong token, a web page's Origin and a foreign Host; stop is never reached", async () => {
  const { dir, port, server, stops } = await tcpSetup();
  const token = readFileSync(join(dir, "control.token"), "utf8").trim();
  const url = `ws://127.0.0.1:${port}/`;
  assert.match(await attempt(url, {}), /403/);
  assert.match(await attempt(url, { Authorization: "Bearer nope" }), /403/);
  assert.match(await attempt(url, { Authorization: `Bearer ${token}`, Origin: "http://evil.example" }), /403/);
  assert.match(await attempt(url, { Authorization: `Bearer ${token}`, Host: `rebound.example:${port}` }), /403/);
  assert.equal(await attempt(url, { Authorization: `Bearer ${token}` }), "open");
  assert.deepEqual(stops, []);
  await server.close();
});

test("a plain HTTP request to the TCP listener is answered 426 and closed at once, not held open", async () => {
  const { port, server } = await tcpSetup();
  const { request } = await import("node:http");
  const answer = await new Promise<{ status: number; closed: boolean }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, closed: res.headers.connection === "close" }));
    });
    req.on("timeout", () => reject(new Error("the request was held open")));
    req.on("error", reject);
    req.end();
  });
  assert.deepEqual(answer, { status: 426, closed: true });
  await server.close();
});

test("an oversized or malformed frame ends that connection only: the launcher keeps serving", async () => {
  const { socket, server } = await setup();
  const ws = new WebSocket(`ws+unix://${socket}:/`);
  await new Promise((r) => ws.once("open", r));
  const closed = new Promise((r) => ws.once("close", r));
  ws.on("error", () => undefined);
  ws.send("x".repeat(200 * 1024));
  await closed;
  // Bytes that are no WebSocket frame at all, on a fresh connection.
  const raw = new WebSocket(`ws+unix://${socket}:/`);
  await new Promise((r) => raw.once("open", r));
  raw.close();
  const bare = await rawUpgrade(socket);
  const bareClosed = new Promise((r) => bare.once("close", r));
  bare.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]));
  await within(bareClosed, 5000, "the connection that sent no frame was not closed");
  const client = await ControlClient.connect(socket);
  assert.equal(((await client.request({ type: "get-state" })) as DinvState).type, "state");
  client.close();
  await server.close();
});

test("a subscriber that does not read is disconnected past a bounded backlog; the launcher's memory stays bounded", async () => {
  const { socket, state, server } = await setup();
  const sub = await rawUpgrade(socket);
  sub.write(clientFrame(JSON.stringify({ type: "subscribe", id: 1 })));
  await new Promise((r) => setTimeout(r, 50));
  // Stop reading: the launcher's writes queue on its side once the socket's own buffer is full.
  sub.pause();
  const change = (i: number) => state.setHostError("flood", { message: `change ${i} ${"x".repeat(200)}` });
  change(0);
  const oneState = Buffer.byteLength(JSON.stringify(state.snapshot()));
  const changes = 20_000;
  for (let i = 1; i < changes; i++) change(i);
  await new Promise((r) => setTimeout(r, 200));
  let received = 0;
  sub.on("data", (b: Buffer) => (received += b.length));
  const closed = new Promise((r) => sub.once("close", r));
  sub.resume();
  await within(closed, 10_000, "the slow subscriber was never disconnected");
  // What reached it is the backlog bound plus the sockets' buffers, far from everything sent.
  assert.ok(oneState * changes > 10 * MAX_SUBSCRIBER_BACKLOG, `the flood (${oneState * changes} bytes) outgrows the bound`);
  assert.ok(received < 4 * MAX_SUBSCRIBER_BACKLOG, `${received} bytes reached a subscriber that stopped reading`);
  await server.close();
});
