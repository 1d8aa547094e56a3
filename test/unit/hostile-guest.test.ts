// The host side against a hostile guest: random and adversarial frames over a real byte stream.
// It must reject, log rate-limited, keep serving, and never act beyond the protocol.

import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Duplex } from "node:stream";
import fc from "fast-check";
import pino from "pino";
import { GuestSession } from "../../host/guest-link/session.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { encodeFrame } from "../../shared/framing.js";
import { GuestMessageSchema, type GuestMessage } from "../../shared/protocol/guest-messages.js";
import type { HostMessage } from "../../shared/protocol/host-messages.js";
import { StreamTransport } from "../../shared/transport.js";
import { makeConfig } from "../helpers/make-config.js";

function hostOverStream() {
  const toHost = new PassThrough();
  const fromHost = new PassThrough();
  const sent: HostMessage[] = [];
  fromHost.on("data", () => undefined);
  const lines: string[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
  const session = new GuestSession(guestConfigFor(makeConfig()), log);
  const transport = new StreamTransport<GuestMessage, HostMessage>(Duplex.from({ readable: toHost, writable: fromHost }), GuestMessageSchema, 4096);
  const originalSend = transport.send.bind(transport);
  transport.send = (m) => {
    sent.push(m);
    originalSend(m);
  };
  session.attach(transport);
  return { toHost, session, sent, lines };
}

const hello = encodeFrame(Buffer.from(JSON.stringify({ type: "hello", protocolVersion: 1, bootId: "b", agentVersion: "x", uptimeMs: 1 })));
const ready = encodeFrame(Buffer.from(JSON.stringify({ type: "status", seq: 1_000_000, at: 1, uptimeMs: 1, bootId: "b", state: { phase: "ready" }, steps: [] })));
const settle = () => new Promise((r) => setImmediate(r));

const adversarialFrame = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => encodeFrame(Buffer.from(b), 1 << 20)),
  fc.jsonValue({ maxDepth: 6 }).map((v) => encodeFrame(Buffer.from(JSON.stringify(v)))),
  fc.record({ type: fc.constantFrom("hello", "status", "log", "exec", "open", "config", "shutdown"), path: fc.string(), cmd: fc.string(), seq: fc.anything() }).map((v) => encodeFrame(Buffer.from(JSON.stringify(v)))),
  // Oversize frames, complete: the decoder must skip them byte-exactly and stay in sync.
  fc.integer({ min: 4097, max: 20_000 }).map((n) => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(n);
    return Buffer.concat([h, Buffer.alloc(n, 0x41)]);
  }),
  fc.constant(encodeFrame(Buffer.from("[".repeat(3000)))),
  fc.constant(encodeFrame(Buffer.from([0xc3, 0x28, 0xa0, 0xa1]))),
);

test("a 4 GiB declared length is skipped without allocating it, and what it covers is never taken for messages", async () => {
  const { toHost, session } = hostOverStream();
  toHost.write(hello);
  await settle();
  assert.equal(session.hello?.bootId, "b", "the session is live");
  const before = process.memoryUsage().arrayBuffers;
  const h = Buffer.alloc(4);
  h.writeUInt32BE(0xffffffff);
  toHost.write(h);
  // One 1 MiB chunk written 64 times: only a decoder that keeps or copies what it skips grows.
  const chunk = Buffer.alloc(1 << 20, 0x41);
  for (let i = 0; i < 64; i++) toHost.write(chunk);
  // A valid status inside the declared frame is part of what is skipped.
  toHost.write(ready);
  await settle();
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 16 * 2 ** 20, `${Math.round(grown / 2 ** 20)} MiB of buffers held after 64 MiB sent: no buffer of the declared size, nor of what was sent`);
  assert.equal(session.status, undefined);
});

test("a 1 MiB console line and control characters from the guest: bounded, one clean line each", async () => {
  const { LineSplitter, MAX_CONSOLE_LINE } = await import("../../host/qemu/process.js");
  const out: string[] = [];
  const splitter = new LineSplitter((l) => out.push(l));
  const started = performance.now();
  for (let i = 0; i < 1024; i++) splitter.push("A".repeat(1024));
  splitter.push("\nnext \x1b[31mred\x1b[0m\u0007bell\rmore\n");
  assert.ok(performance.now() - started < 2000, "linear, not quadratic");
  assert.equal(out.length, 2);
  assert.ok(out[0]!.length <= MAX_CONSOLE_LINE + 20 && out[0]!.endsWith("[line truncated]"));
  assert.equal(out[1], "next red bell more");
});

test("guest strings reach the state without newlines or control characters", async () => {
  const { toHost, session } = hostOverStream();
  toHost.write(hello);
  const evil = encodeFrame(Buffer.from(JSON.stringify({ type: "status", seq: 5, at: 1, uptimeMs: 1, bootId: "b", state: { phase: "degraded", errors: [{ step: "ping", message: "bad\n[00:00] INFO: dinv ready\u001b[2J" }] }, steps: [] })));
  toHost.write(evil);
  await settle();
  const message = session.status?.state.phase === "degraded" ? session.status.state.errors[0]!.message : "";
  assert.equal(message, "bad [00:00] INFO: dinv ready");
});

test("random and adversarial frames: nothing throws, only protocol replies go out, and the session keeps serving", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(adversarialFrame, { maxLength: 30 }), fc.integer({ min: 1, max: 64 }), async (frames, chunk) => {
      const { toHost, session, sent } = hostOverStream();
      toHost.write(hello);
      await settle();
      const stream = Buffer.concat(frames);
      for (let i = 0; i < stream.length; i += chunk) toHost.write(stream.subarray(i, i + chunk));
      await settle();
      // Whatever came before, a well-formed hello and status are still understood.
      toHost.write(hello);
      toHost.write(ready);
      await settle();
      assert.equal(session.status?.state.phase, "ready");
      // The host only ever answers a hello with the config it was given: no guest-chosen action.
      for (const m of sent) assert.ok(m.type === "config", `unexpected host message ${m.type}`);
    }),
    { numRuns: 150 },
  );
});

test("a flood of bad frames is logged rate-limited, not once per frame", async () => {
  const { toHost, lines } = hostOverStream();
  for (let i = 0; i < 5000; i++) toHost.write(encodeFrame(Buffer.from(`{"type":"nope${i}"}`)));
  await settle();
  const rejections = lines.filter((l) => l.includes("rejected guest message"));
  assert.ok(rejections.length > 0 && rejections.length <= 20, `${rejections.length} lines for 5000 bad frames`);
});

test("a flood of valid guest log lines is rate-limited too", async () => {
  const { toHost, lines } = hostOverStream();
  toHost.write(hello);
  for (let i = 0; i < 5000; i++) toHost.write(encodeFrame(Buffer.from(JSON.stringify({ type: "log", level: "error", msg: `spam ${i}` }))));
  await settle();
  const spam = lines.filter((l) => l.includes("spam "));
  // Some pass (a burst), most do not, and the suppression is said.
  assert.ok(spam.length >= 10 && spam.length <= 250, `${spam.length} of 5000 log lines passed`);
  assert.ok(lines.some((l) => l.includes("guest log lines suppressed")), "the suppression is logged");
});

test("hellos with alternating boot ids: the bytes logged stay within the guest's budget, and replies are bounded", async () => {
  const { toHost, lines, sent } = hostOverStream();
  const long = "x".repeat(60);
  for (let i = 0; i < 10_000; i++) toHost.write(encodeFrame(Buffer.from(JSON.stringify({ type: "hello", protocolVersion: 1, bootId: `${long}${i % 2}`, agentVersion: "x", uptimeMs: 1 }))));
  await settle();
  const bytes = lines.join("").length;
  // The budget: a 512 KiB burst (64 KiB/s after it; this loop takes well under a second); with pino's fields, ~2x.
  assert.ok(bytes <= 2 * 512 * 1024 + 64 * 1024, `${bytes} bytes logged for 10,000 hellos`);
  assert.ok(lines.some((l) => l.includes("guest booted again")), "it is logged while within the budget");
  // Replies are rate-limited; the latest hello is still answered once the rate allows.
  const replies = sent.filter((m) => m.type === "config").length;
  assert.ok(replies >= 1 && replies <= 10, `${replies} config replies for 10,000 hellos`);
});

test("hellos repeating one boot id: config replies are rate-limited, not one per hello", async () => {
  const { toHost, sent } = hostOverStream();
  for (let i = 0; i < 5000; i++) toHost.write(hello);
  await settle();
  const replies = sent.filter((m) => m.type === "config").length;
  assert.ok(replies >= 1 && replies <= 10, `${replies} config replies for 5000 hellos of one boot`);
});
