// A minimal QMP client: enough to ask QEMU to quit (flushing its disk caches) during escalation.

import { createConnection } from "node:net";
import { z } from "zod";

const QmpReplySchema = z.union([
  z.object({ QMP: z.unknown() }),
  z.object({ return: z.unknown() }),
  z.object({ error: z.object({ class: z.string(), desc: z.string() }) }),
  z.object({ event: z.string() }),
]);

/** Run one QMP command; resolves with its return value or rejects with QEMU's error. */
export function qmpCommand(socketPath: string, execute: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`QMP ${execute}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    let buffer = "";
    let stage: "greeting" | "capabilities" | "command" = "greeting";
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      socket.end();
      fn();
    };
    socket.on("error", (err) => finish(() => reject(err)));
    // quit closes the socket before or right after answering: treat that as success.
    socket.on("close", () => finish(() => (stage === "command" ? resolve(undefined) : reject(new Error("QMP closed")))));
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        const parsed = QmpReplySchema.safeParse(JSON.parse(line));
        if (!parsed.success || "event" in parsed.data) continue;
        const reply = parsed.data;
        if ("error" in reply) return finish(() => reject(new Error(`QMP ${execute}: ${reply.error.desc}`)));
        if (stage === "greeting") {
          stage = "capabilities";
          socket.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        } else if (stage === "capabilities") {
          stage = "command";
          socket.write(`${JSON.stringify({ execute })}\n`);
        } else if ("return" in reply) {
          return finish(() => resolve(reply.return));
        }
      }
    });
  });
}
