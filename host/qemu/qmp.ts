// A minimal QMP client: one connection a command (QMP's greeting and capabilities negotiation
// each time), commands to one socket queued, since QEMU's monitor chardev serves one client at a
// time. Used to quit (flushing disk caches) and to add and remove SLIRP forwards.

import { createConnection } from "node:net";
import { z } from "zod";

const QmpReplySchema = z.union([
  z.object({ QMP: z.unknown() }),
  z.object({ return: z.unknown() }),
  z.object({ error: z.object({ class: z.string(), desc: z.string() }) }),
  z.object({ event: z.string() }),
]);

/** How a QMP command failed: no answer in time, the monitor closed or could not be reached, an error reply from QEMU, or bytes that are not QMP. */
export type QmpErrorKind = "timeout" | "closed" | "unreachable" | "error-reply" | "protocol";

export class QmpError extends Error {
  constructor(
    readonly kind: QmpErrorKind,
    readonly command: string,
    message: string,
    /** QEMU's error class, for an error reply (e.g. GenericError, CommandNotFound) */
    readonly qmpClass?: string,
  ) {
    super(`QMP ${command}: ${message}`);
  }
}

const queues = new Map<string, Promise<unknown>>();

/** Run one QMP command; resolves with its return value or rejects with QEMU's error. */
export function qmpCommand(socketPath: string, execute: string, options: { arguments?: Record<string, unknown>; timeoutMs?: number } = {}): Promise<unknown> {
  const previous = queues.get(socketPath) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => once(socketPath, execute, options.arguments, options.timeoutMs ?? 5000));
  queues.set(socketPath, run);
  void run.catch(() => undefined).finally(() => {
    if (queues.get(socketPath) === run) queues.delete(socketPath);
  });
  return run;
}

/** An HMP command through QMP (`human-monitor-command`): its text output, which is where HMP reports failures. */
export async function hmpCommand(socketPath: string, commandLine: string, timeoutMs = 5000): Promise<string> {
  const out = await qmpCommand(socketPath, "human-monitor-command", { arguments: { "command-line": commandLine }, timeoutMs });
  return typeof out === "string" ? out : "";
}

function once(socketPath: string, execute: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new QmpError("timeout", execute, `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    let buffer = "";
    let stage: "greeting" | "capabilities" | "command" = "greeting";
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      socket.end();
      fn();
    };
    socket.on("error", (err) => finish(() => reject(new QmpError("unreachable", execute, err.message))));
    // quit closes the socket before or right after answering: treat that as success.
    socket.on("close", () => finish(() => (stage === "command" ? resolve(undefined) : reject(new QmpError("closed", execute, "the monitor closed before the command was sent")))));
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        let json: unknown;
        try {
          json = JSON.parse(line);
        } catch {
          return finish(() => reject(new QmpError("protocol", execute, "not JSON from QEMU")));
        }
        const parsed = QmpReplySchema.safeParse(json);
        if (!parsed.success || "event" in parsed.data) continue;
        const reply = parsed.data;
        if ("error" in reply) return finish(() => reject(new QmpError("error-reply", execute, reply.error.desc, reply.error.class)));
        if (stage === "greeting") {
          stage = "capabilities";
          socket.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        } else if (stage === "capabilities") {
          stage = "command";
          socket.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
        } else if ("return" in reply) {
          return finish(() => resolve(reply.return));
        }
      }
    });
  });
}
