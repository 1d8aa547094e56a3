// A message transport: the protocol logic on either side sees only send/close/onmessage,
// so it runs over an in-memory pair in unit tests and over virtio-serial for real.

import type { Duplex } from "node:stream";
import type { z } from "zod";
import { FrameDecoder, encodeFrame } from "./framing.js";
import { decodeMessage, encodeMessage } from "./protocol/codec.js";
import { MAX_FRAME_BYTES } from "./constants.js";

export interface Transport<In, Out> {
  send(message: Out): void;
  close(): void;
  /** resolves once everything sent so far has been handed to the OS */
  drain?(): Promise<void>;
  onmessage?: (message: In) => void;
  /** a frame or message was rejected; the transport keeps running */
  onreject?: (reason: string) => void;
  onclose?: () => void;
}

/** Frames and validates messages over any byte stream (unix socket, virtio port). */
export class StreamTransport<In, Out> implements Transport<In, Out> {
  onmessage?: (message: In) => void;
  onreject?: (reason: string) => void;
  onclose?: () => void;
  private readonly decoder: FrameDecoder;
  private closed = false;

  constructor(
    private readonly stream: Duplex,
    private readonly schema: z.ZodType<In>,
    maxFrameBytes = MAX_FRAME_BYTES,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    stream.on("data", (chunk: Buffer) => this.receive(chunk));
    stream.on("error", () => this.finish());
    stream.on("close", () => this.finish());
    stream.on("end", () => this.finish());
  }

  private receive(chunk: Buffer): void {
    for (const event of this.decoder.push(chunk)) {
      if (this.closed) return;
      if (event.kind === "oversize") {
        this.onreject?.(`frame of ${event.declaredBytes} bytes exceeds the maximum; skipped`);
        continue;
      }
      const decoded = decodeMessage(this.schema, event.payload);
      if (decoded.ok) this.onmessage?.(decoded.value);
      else this.onreject?.(decoded.reason);
    }
  }

  send(message: Out): void {
    if (this.closed) return;
    this.stream.write(encodeFrame(encodeMessage(message)));
  }

  drain(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.stream.write(Buffer.alloc(0), () => resolve()));
  }

  close(): void {
    this.stream.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }
}

/** One end of an in-memory pair; see createMemoryPair. */
export class MemoryTransport<In, Out> implements Transport<In, Out> {
  onmessage?: (message: In) => void;
  onreject?: (reason: string) => void;
  onclose?: () => void;
  peer?: MemoryTransport<Out, In>;

  constructor(
    private readonly schema: z.ZodType<In>,
    private readonly state: { open: boolean },
  ) {}

  /** Deliver raw bytes as if they had arrived in one frame (for hostile-input tests). */
  deliver(bytes: Uint8Array): void {
    queueMicrotask(() => {
      if (!this.state.open) return;
      const decoded = decodeMessage(this.schema, bytes);
      if (decoded.ok) this.onmessage?.(decoded.value);
      else this.onreject?.(decoded.reason);
    });
  }

  send(message: Out): void {
    if (this.state.open) this.peer!.deliver(encodeMessage(message));
  }

  close(): void {
    if (!this.state.open) return;
    this.state.open = false;
    queueMicrotask(() => {
      this.onclose?.();
      this.peer!.onclose?.();
    });
  }
}

/**
 * Two connected transports in memory. Messages pass through the real codec (JSON and zod),
 * asynchronously, so tests exercise the same validation as the wire.
 */
export function createMemoryPair<A, B>(
  schemaA: z.ZodType<A>,
  schemaB: z.ZodType<B>,
): [MemoryTransport<A, B>, MemoryTransport<B, A>] {
  const state = { open: true };
  const a = new MemoryTransport<A, B>(schemaA, state);
  const b = new MemoryTransport<B, A>(schemaB, state);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
