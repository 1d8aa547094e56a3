import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameDecoder, encodeFrame, type FrameEvent } from "../../shared/framing.js";

const frames = (events: FrameEvent[]) => events.map((e) => (e.kind === "frame" ? e.payload.toString() : `oversize:${e.declaredBytes}`));

test("a frame fed one byte at a time decodes once, at its last byte", () => {
  const bytes = Buffer.concat([encodeFrame(Buffer.from("hello")), encodeFrame(Buffer.from("world!"))]);
  const decoder = new FrameDecoder(64);
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const got = frames(decoder.push(bytes.subarray(i, i + 1)));
    if (i === 8) assert.deepEqual(got, ["hello"]);
    out.push(...got);
  }
  assert.deepEqual(out, ["hello", "world!"]);
  assert.equal(decoder.pendingBytes, 0);
});

test("several frames in one chunk, and a frame split across chunks", () => {
  const a = encodeFrame(Buffer.from("one"));
  const b = encodeFrame(Buffer.from("two"));
  const c = encodeFrame(Buffer.from("three"));
  const all = Buffer.concat([a, b, c]);
  const decoder = new FrameDecoder(64);
  assert.deepEqual(frames(decoder.push(all.subarray(0, a.length + b.length + 2))), ["one", "two"]);
  assert.deepEqual(frames(decoder.push(all.subarray(a.length + b.length + 2))), ["three"]);
});

test("an empty frame is a frame", () => {
  assert.deepEqual(frames(new FrameDecoder(8).push(encodeFrame(Buffer.alloc(0)))), [""]);
});

test("an oversize frame is reported, skipped without buffering, and the stream stays in sync", () => {
  const decoder = new FrameDecoder(16);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1000);
  const events: string[] = [];
  events.push(...frames(decoder.push(header)));
  for (let sent = 0; sent < 1000; sent += 100) {
    events.push(...frames(decoder.push(Buffer.alloc(100, 0x41))));
    assert.ok(decoder.pendingBytes <= 16, "oversize payload must not be buffered");
  }
  events.push(...frames(decoder.push(encodeFrame(Buffer.from("after")))));
  assert.deepEqual(events, ["oversize:1000", "after"]);
});

test("a huge declared length (4 GiB) is rejected at once", () => {
  const decoder = new FrameDecoder(16);
  assert.deepEqual(frames(decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))), ["oversize:4294967295"]);
  assert.equal(decoder.pendingBytes, 0);
});

test("encodeFrame refuses to send an oversize payload", () => {
  assert.throws(() => encodeFrame(Buffer.alloc(17), 16), RangeError);
});

test("a 1 MiB frame in 512-byte chunks decodes in linear time (no copy of the buffer per chunk)", () => {
  const payload = Buffer.alloc(1024 * 1024 - 16, 0x61);
  const frame = encodeFrame(payload);
  const time = (chunk: number) => {
    const d = new FrameDecoder();
    const t0 = performance.now();
    let got = 0;
    for (let i = 0; i < frame.length; i += chunk) for (const e of d.push(frame.subarray(i, i + chunk))) if (e.kind === "frame") got = e.payload.length;
    assert.equal(got, payload.length);
    return performance.now() - t0;
  };
  const big = time(64 * 1024);
  const small = time(512);
  // Quadratic buffering took ~30x longer in 512-byte chunks than in 64 KiB ones; linear is within a few x.
  assert.ok(small < Math.max(50, big * 10), `512 B chunks ${small.toFixed(0)} ms vs 64 KiB chunks ${big.toFixed(0)} ms`);
});
