// The control API client used by the dinv CLI.

import WebSocket from "ws";
import { decodeMessage } from "../../shared/protocol/codec.js";
import { ControlReplySchema, type ControlErrorCode, type ControlReply, type ControlRequest, type DinvState } from "../../shared/protocol/control.js";

export class UnreachableError extends Error {}

/** The launcher answered a request with an error reply: its code and message. */
export class ControlRequestError extends Error {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(`the launcher refused the request (${code}): ${message}`);
  }
}

/** The reply a request gets, by its type: an error reply rejects instead. */
type ReplyTo<T extends ControlRequest["type"]> = T extends "get-state" | "subscribe" ? DinvState : T extends "health" ? Extract<ControlReply, { type: "health" }> : T extends "cache-save" ? Extract<ControlReply, { type: "cache-saved" }> : Extract<ControlReply, { type: "ok" }>;

type Pending = { resolve: (r: ControlReply) => void; reject: (e: Error) => void };
type RequestBody<T extends ControlRequest["type"]> = Omit<Extract<ControlRequest, { type: T }>, "id">;

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  onstate?: (state: DinvState) => void;
  onclose?: () => void;

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const decoded = decodeMessage(ControlReplySchema, Buffer.from(data.toString(), "utf8"));
      if (!decoded.ok) return;
      const reply = decoded.value;
      // Every reply names its request; a state pushed to a subscriber names none.
      if (reply.type === "state") this.onstate?.(reply);
      const id = reply.id ?? null;
      const pending = id === null ? undefined : this.pending.get(id);
      if (pending && id !== null) {
        this.pending.delete(id);
        if (reply.type === "error") pending.reject(new ControlRequestError(reply.code, reply.message));
        else pending.resolve(reply);
      }
    });
    ws.on("error", () => ws.terminate());
    ws.on("close", () => {
      const closed = new UnreachableError("the launcher closed the connection");
      for (const p of this.pending.values()) p.reject(closed);
      this.pending.clear();
      this.onclose?.();
    });
  }

  /** Connect to the launcher's control socket; retries until `retryUntil` (epoch ms) if given. */
  static async connect(socketPath: string, retryUntil?: number): Promise<ControlClient> {
    for (;;) {
      try {
        const ws = new WebSocket(`ws+unix://${socketPath}:/`, { handshakeTimeout: 3000 });
        await new Promise<void>((resolve, reject) => {
          ws.once("open", () => resolve());
          ws.once("error", reject);
        });
        return new ControlClient(ws);
      } catch (err) {
        if (retryUntil === undefined || Date.now() > retryUntil) {
          throw new UnreachableError(`no dinv launcher answers on ${socketPath} (${(err as Error).message}); is \`dinv run\` running with this DINV_RUN_DIR?`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Send a request; resolves with its reply, rejects with ControlRequestError on an error reply. */
  request<T extends ControlRequest["type"]>(body: RequestBody<T> & { type: T }, timeoutMs = 10_000): Promise<ReplyTo<T>> {
    const id = this.nextId++;
    return new Promise<ControlReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new UnreachableError(`the launcher did not answer ${body.type} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const entry: Pending = {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.pending.set(id, entry);
      this.ws.send(JSON.stringify({ ...body, id }));
    }).then((reply) => {
      // A reply of another type than the request's is the launcher's bug, never cast over.
      const want = body.type === "get-state" || body.type === "subscribe" ? "state" : body.type === "health" ? "health" : body.type === "cache-save" ? "cache-saved" : "ok";
      if (reply.type !== want) throw new ControlRequestError("internal", `a ${reply.type} reply to ${body.type}`);
      return reply as ReplyTo<T>;
    });
  }

  close(): void {
    this.ws.close();
  }
}
