// The control API client used by the dinv CLI.

import WebSocket from "ws";
import { decodeMessage } from "../../shared/protocol/codec.js";
import { ControlReplySchema, type ControlReply, type ControlRequest, type DinvState } from "../../shared/protocol/control.js";

export class UnreachableError extends Error {}

type Pending = { resolve: (r: ControlReply) => void; reject: (e: Error) => void };
type RequestBody = ControlRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

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
        pending.resolve(reply);
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

  request(body: RequestBody, timeoutMs = 10_000): Promise<ControlReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
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
    });
  }

  close(): void {
    this.ws.close();
  }
}
