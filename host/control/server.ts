// The control API server: WebSocket on a unix socket in DINV_RUN_DIR (mode 0660), optionally on
// loopback TCP. Requests are validated; unknown ones get a typed error, never a crash.

import { createServer, type Server } from "node:http";
import { chmod, chown } from "node:fs/promises";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeMessage } from "../../shared/protocol/codec.js";
import { ControlRequestSchema, type ControlReply } from "../../shared/protocol/control.js";
import { removeStaleSocket } from "../agent/channel.js";
import type { LauncherState } from "./state.js";

export interface ControlHandlers {
  stop(timeoutSeconds?: number): void;
  health(): Promise<{ healthy: boolean; reason: string }>;
}

export interface ControlServer {
  close(): Promise<void>;
}

/** Largest accepted request, bytes. */
const MAX_REQUEST_BYTES = 64 * 1024;

export async function startControlServer(
  socketPath: string,
  state: LauncherState,
  handlers: ControlHandlers,
  options: { gid?: number; tcpPort?: number } = {},
): Promise<ControlServer> {
  const servers: Server[] = [];
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_REQUEST_BYTES });
  wss.on("connection", (ws) => serve(ws, state, handlers));
  const listen = async (server: Server, ...args: unknown[]) => {
    server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req)));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
    });
    servers.push(server);
  };
  await removeStaleSocket(socketPath);
  await listen(createServer(), socketPath);
  await chmod(socketPath, 0o660);
  if (options.gid !== undefined) await chown(socketPath, process.getuid?.() ?? 0, options.gid);
  if (options.tcpPort !== undefined) await listen(createServer(), options.tcpPort, "127.0.0.1");
  return {
    close: async () => {
      for (const client of wss.clients) client.close(1001, "launcher exiting");
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

function serve(ws: WebSocket, state: LauncherState, handlers: ControlHandlers): void {
  const send = (reply: ControlReply) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(reply));
  };
  let unsubscribe: (() => void) | undefined;
  ws.on("close", () => unsubscribe?.());
  ws.on("message", (data, isBinary) => {
    const bytes = isBinary ? Buffer.from(data as Buffer) : Buffer.from(data.toString(), "utf8");
    const decoded = decodeMessage(ControlRequestSchema, bytes);
    if (!decoded.ok) {
      const unknown = /schema: type/.test(decoded.reason);
      send({ type: "error", id: null, code: unknown ? "unknown-request" : "bad-request", message: decoded.reason });
      return;
    }
    const request = decoded.value;
    switch (request.type) {
      case "get-state":
        send(state.snapshot());
        return;
      case "subscribe":
        // The current state first, so a late subscriber sees everything.
        send(state.snapshot());
        unsubscribe ??= state.subscribe(send);
        return;
      case "stop":
        send({ type: "ok", id: request.id });
        handlers.stop(request.timeoutSeconds);
        return;
      case "health":
        handlers.health().then(
          (h) => send({ type: "health", id: request.id, ...h }),
          (err: unknown) => send({ type: "error", id: request.id, code: "internal", message: String(err) }),
        );
        return;
    }
  });
}
