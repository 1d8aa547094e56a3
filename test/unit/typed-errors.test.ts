// Errors that carry what they are: QMP's (timeout, closed, unreachable, an error reply) against a
// QMP monitor stand-in on a unix socket, and the control API's error replies reaching the CLI
// with their code.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket, { WebSocketServer } from "ws";
import { QmpError, qmpCommand } from "../../host/qemu/qmp.js";
import { ControlClient, ControlRequestError } from "../../host/control/client.js";
import { CLI_EXIT, describeFailure, runClientCommand } from "../../host/cli/commands.js";
import { createServer as createHttpServer } from "node:http";

/** A QMP monitor that greets, accepts capabilities, then answers the command as `reply` says. */
async function monitor(reply: (socket: Socket) => void): Promise<{ path: string; close: () => void }> {
  const path = join(mkdtempSync(join(tmpdir(), "dinv-qmp-")), "qmp.sock");
  const server = createServer((socket) => {
    socket.write(`${JSON.stringify({ QMP: { version: {} } })}\n`);
    let stage = 0;
    socket.on("data", () => {
      if (stage++ === 0) socket.write(`${JSON.stringify({ return: {} })}\n`);
      else reply(socket);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, close: () => server.close() };
}

test("QMP: an error reply, a timeout, a closed monitor and a missing socket are told apart", async () => {
  const erring = await monitor((s) => s.write(`${JSON.stringify({ error: { class: "CommandNotFound", desc: "The command frob has not been found" } })}\n`));
  await assert.rejects(qmpCommand(erring.path, "frob"), (e: unknown) => e instanceof QmpError && e.kind === "error-reply" && e.qmpClass === "CommandNotFound" && e.command === "frob" && /has not been found/.test(e.message));
  erring.close();

  const silent = await monitor(() => undefined);
  const started = Date.now();
  await assert.rejects(qmpCommand(silent.path, "query-status", { timeoutMs: 300 }), (e: unknown) => e instanceof QmpError && e.kind === "timeout");
  assert.ok(Date.now() - started < 3000, "the timeout is the one asked for");
  silent.close();

  // A monitor that hangs up before the command is sent.
  const path = join(mkdtempSync(join(tmpdir(), "dinv-qmp-")), "qmp.sock");
  const hangup = createServer((socket) => socket.end());
  await new Promise<void>((r) => hangup.listen(path, r));
  await assert.rejects(qmpCommand(path, "cont"), (e: unknown) => e instanceof QmpError && e.kind === "closed");
  hangup.close();

  await assert.rejects(qmpCommand(join(tmpdir(), "dinv-no-such-dir", "qmp.sock"), "quit"), (e: unknown) => e instanceof QmpError && e.kind === "unreachable");
  // Quit's answer may be the monitor closing: that is success.
  const quitting = await monitor((s) => s.end());
  assert.equal(await qmpCommand(quitting.path, "quit"), undefined);
  quitting.close();
});

test("control API: an error reply rejects with its code, and the CLI exits with the refused code", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-ctl-"));
  const socket = join(dir, "control.sock");
  // A launcher stand-in that answers every request with an error reply of the protocol.
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http });
  wss.on("connection", (ws: WebSocket) => ws.on("message", (data) => {
    const { id } = JSON.parse(data.toString()) as { id: number };
    ws.send(JSON.stringify({ type: "error", id, code: "internal", message: "the health check threw" }));
  }));
  await new Promise<void>((r) => http.listen(socket, r));
  const client = await ControlClient.connect(socket);
  await assert.rejects(client.request({ type: "health" }), (e: unknown) => e instanceof ControlRequestError && e.code === "internal" && /the health check threw/.test(e.message));
  client.close();
  const failure = await runClientCommand("health", [], { DINV_RUN_DIR: dir }, { write: () => undefined }, { write: () => undefined }).then(() => undefined, describeFailure);
  assert.deepEqual(failure, { code: CLI_EXIT.refused, message: "the launcher refused the request (internal): the health check threw" });
  wss.close();
  http.close();
});
