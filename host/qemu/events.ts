// QMP events from a monitor of their own (QEMU's monitor chardev serves one client at a time, and
// the command monitor is busy with short connections): the launcher stays connected and hears
// BLOCK_IO_ERROR, STOP and RESUME as they happen. Commands may be sent on it too (cont).

import { createConnection, type Socket } from "node:net";
import { z } from "zod";

const EventSchema = z.object({
  event: z.string().max(64),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type QmpEvent = z.infer<typeof EventSchema>;

/** One event line from QEMU, or undefined for replies, greetings and anything malformed. Pure. */
export function parseQmpEvent(line: string): QmpEvent | undefined {
  try {
    const parsed = EventSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export class QmpEventStream {
  private socket: Socket | undefined;
  onevent?: (event: QmpEvent) => void;

  /** Connect (retrying while QEMU creates its socket) and negotiate; resolves once events flow. */
  async connect(path: string, signal: AbortSignal, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal.aborted) throw new Error("aborted");
      try {
        this.socket = await open(path);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const socket = this.socket;
    signal.addEventListener("abort", () => socket.destroy(), { once: true });
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      // A line longer than this from QEMU is not an event we know: drop it.
      if (buffer.length > 1 << 20) buffer = "";
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const event = parseQmpEvent(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (event) this.onevent?.(event);
      }
    });
    socket.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
  }

  /** Send a command, not waiting for its reply (cont after a pause). */
  send(execute: string): void {
    this.socket?.write(`${JSON.stringify({ execute })}\n`);
  }

  close(): void {
    this.socket?.destroy();
  }
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}
