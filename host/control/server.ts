// The control API server: WebSocket on a unix socket in DINV_RUN_DIR (mode 0660), optionally on
// loopback TCP. Requests are validated; unknown ones get a typed error, never a crash. The TCP
// listener is reachable by anything on the launcher's loopback (which SLIRP and passt map to the
// guest's 10.0.2.2, and a browser page may try): it asks for a token and refuses browsers.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { chmod, chown, writeFile } from "node:fs/promises";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeMessage } from "../../shared/protocol/codec.js";
import { ControlRequestSchema, type ControlReply, type DinvState } from "../../shared/protocol/control.js";
import { removeStaleSocket } from "../guest-link/channel.js";
import type { LauncherState } from "./state.js";

export interface ControlHandlers {
  stop(timeoutSeconds?: number): void;
  health(): Promise<{ healthy: boolean; reason: string }>;
  /** promote the job's docker disk now (dinv cache save); resolves once the generation is safe on disk, or with why not */
  cacheSave(): Promise<{ ok: boolean; generation?: number; bytes?: number; message: string }>;
}

export interface ControlServer {
  close(): Promise<void>;
}

/** Largest accepted request, bytes. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** A subscriber with more than this much unsent is too slow to follow: it is disconnected, bytes. */
export const MAX_SUBSCRIBER_BACKLOG = 1024 * 1024;

/** Why an upgrade on the TCP listener is refused, or undefined. Pure. */
export function tcpRefusal(headers: IncomingMessage["headers"], token: string, port: number): string | undefined {
  // Browsers always send Origin with a WebSocket: no web page may drive the launcher.
  if (headers.origin !== undefined) return "a request from a web page (Origin header) is refused";
  // DNS rebinding: a name that resolved to 127.0.0.1 still carries its own Host.
  const host = headers.host ?? "";
  if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return `Host ${JSON.stringify(host.slice(0, 100))} is not this listener`;
  const given = /^Bearer (\S+)$/.exec(headers.authorization ?? "")?.[1] ?? "";
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return "missing or wrong token (Authorization: Bearer, from DINV_RUN_DIR/control.token)";
  return undefined;
}

function refuse(socket: Duplex, status: string, reason: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${reason}\n`);
}

export async function startControlServer(
  socketPath: string,
  state: LauncherState,
  handlers: ControlHandlers,
  options: { gid?: number; tcpPort?: number; tokenFile?: string } = {},
): Promise<ControlServer> {
  const servers: Server[] = [];
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_REQUEST_BYTES });
  wss.on("connection", (ws) => serve(ws, state, handlers));
  wss.on("error", () => undefined);
  const listen = async (server: Server, check: ((req: IncomingMessage) => string | undefined) | undefined, ...args: unknown[]) => {
    server.on("upgrade", (req, socket, head) => {
      socket.on("error", () => socket.destroy());
      const refusal = check?.(req);
      if (refusal) return refuse(socket, "403 Forbidden", refusal);
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
    });
    server.on("clientError", (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
    });
    servers.push(server);
  };
  // A plain HTTP request is answered and closed at once, and a client that never finishes its
  // headers is dropped: only WebSocket upgrades are served, and nothing waits on a silent peer.
  const httpServer = () => {
    const server = createServer((_req, res) => {
      res.writeHead(426, { Connection: "close", "Content-Type": "text/plain" });
      res.end("dinv control API: WebSocket only\n");
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    return server;
  };
  await removeStaleSocket(socketPath);
  await listen(httpServer(), undefined, socketPath);
  await chmod(socketPath, 0o660);
  if (options.gid !== undefined) await chown(socketPath, process.getuid?.() ?? 0, options.gid);
  if (options.tcpPort !== undefined) {
    const token = randomBytes(32).toString("hex");
    if (options.tokenFile) await writeFile(options.tokenFile, `${token}\n`, { mode: 0o600 });
    const port = options.tcpPort;
    await listen(httpServer(), (req) => tcpRefusal(req.headers, token, port), port, "127.0.0.1");
  }
  return {
    close: async () => {
      for (const client of wss.clients) client.close(1001, "launcher exiting");
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

function serve(ws: WebSocket, state: LauncherState, handlers: ControlHandlers): void {
  // An oversized or malformed frame is an error on this connection only, never the launcher's.
  ws.on("error", () => ws.terminate());
  const send = (reply: ControlReply) => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_SUBSCRIBER_BACKLOG) {
      ws.terminate();
      return;
    }
    ws.send(JSON.stringify(reply));
  };
  const stateReply = (id: number | null, snapshot: DinvState = state.snapshot()): ControlReply => ({ ...snapshot, id });
  let unsubscribe: (() => void) | undefined;
  ws.on("close", () => unsubscribe?.());
  ws.on("message", (data, isBinary) => {
    const bytes = isBinary ? Buffer.from(data as Buffer) : Buffer.from(data.toString(), "utf8");
    const decoded = decodeMessage(ControlRequestSchema, bytes);
    if (!decoded.ok) {
      const unknown = decoded.kind === "schema" && decoded.path === "type";
      send({ type: "error", id: requestId(bytes), code: unknown ? "unknown-request" : "bad-request", message: decoded.reason });
      return;
    }
    const request = decoded.value;
    switch (request.type) {
      case "get-state":
        send(stateReply(request.id));
        return;
      case "subscribe":
        // The current state first, answering the request, so a late subscriber sees everything.
        send(stateReply(request.id));
        unsubscribe ??= state.subscribe((s) => send(stateReply(null, s)));
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
      case "cache-save":
        handlers.cacheSave().then(
          (r) => send({ type: "cache-saved", id: request.id, ...r }),
          (err: unknown) => send({ type: "error", id: request.id, code: "internal", message: String(err) }),
        );
        return;
    }
  });
}

/** The id of a request that failed validation, when it has a usable one. */
function requestId(bytes: Buffer): number | null {
  try {
    const id = (JSON.parse(bytes.toString("utf8")) as { id?: unknown }).id;
    return typeof id === "number" && Number.isInteger(id) && id >= 0 ? id : null;
  } catch {
    return null;
  }
}
