// Length-prefixed framing: a 4-byte big-endian payload length, then the payload.
// Framing knows nothing of message meaning; the codec does.

import { MAX_FRAME_BYTES } from "./constants.js";

const HEADER_BYTES = 4;

export function encodeFrame(payload: Uint8Array, maxBytes = MAX_FRAME_BYTES): Buffer {
  if (payload.length > maxBytes) {
    throw new RangeError(`frame of ${payload.length} bytes exceeds the maximum of ${maxBytes}`);
  }
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(payload.length, 0);
  return Buffer.concat([header, payload]);
}

/** One decoded frame, or the report of an oversize frame that was skipped. */
export type FrameEvent =
  | { kind: "frame"; payload: Buffer }
  | { kind: "oversize"; declaredBytes: number };

/**
 * Incremental decoder. Oversize frames are skipped byte-exactly (not buffered), so a hostile
 * peer cannot make us allocate more than maxBytes, and the stream stays in sync afterwards.
 */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private skipRemaining = 0;
  /** bytes the next step needs buffered: a header, or a whole frame once its header is known */
  private needed = HEADER_BYTES;

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let data = chunk;
    while (data.length > 0) {
      if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, data.length);
        this.skipRemaining -= n;
        data = data.subarray(n);
        continue;
      }
      this.buffered.push(data);
      this.bufferedBytes += data.length;
      data = Buffer.alloc(0);
      // Chunks are only collected until the frame is whole: one concatenation a frame, not one a
      // chunk (a 1 MiB frame in 512-byte chunks would copy ~1 GiB).
      if (this.bufferedBytes < this.needed) break;
      const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
      this.buffered = [all];
      let offset = 0;
      while (all.length - offset >= HEADER_BYTES) {
        const length = all.readUInt32BE(offset);
        if (length > this.maxBytes) {
          events.push({ kind: "oversize", declaredBytes: length });
          const available = all.length - offset - HEADER_BYTES;
          const skipped = Math.min(available, length);
          offset += HEADER_BYTES + skipped;
          this.skipRemaining = length - skipped;
          if (this.skipRemaining > 0) break;
          continue;
        }
        if (all.length - offset - HEADER_BYTES < length) break;
        events.push({ kind: "frame", payload: Buffer.from(all.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length)) });
        offset += HEADER_BYTES + length;
      }
      const rest = all.subarray(offset);
      this.buffered = rest.length > 0 ? [Buffer.from(rest)] : [];
      this.bufferedBytes = rest.length;
      // An oversize frame left to skip: the header is consumed, the rest of this chunk (if any) is skip input.
      this.needed = this.skipRemaining === 0 && rest.length >= HEADER_BYTES ? HEADER_BYTES + rest.readUInt32BE(0) : HEADER_BYTES;
    }
    return events;
  }

  /** Bytes held waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }
}
