// A full disk on the launcher's side, no VM: QEMU's BLOCK_IO_ERROR (nospace) over a real QMP
// socket is reported as such, and the VM is resumed (cont) once there is room; QEMU's argv asks
// for the pause and for the events monitor.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { parseQmpEvent, QmpEventStream } from "../../host/qemu/events.js";
import { buildQemuArgs } from "../../host/qemu/args.js";
import { DiskSpaceWatch, RESUME_FREE_BYTES } from "../../host/run/disk-space.js";
import { makeConfig, makePlan } from "../helpers/make-config.js";

const until = async (check: () => boolean, what: string, ms = 3000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test("parseQmpEvent takes events only, and nothing malformed", () => {
  assert.deepEqual(parseQmpEvent('{"event":"STOP","timestamp":{"seconds":1,"microseconds":2}}'), { event: "STOP" });
  assert.equal(parseQmpEvent('{"return":{}}'), undefined);
  assert.equal(parseQmpEvent("{not json"), undefined);
  assert.equal(parseQmpEvent(JSON.stringify({ event: "x".repeat(100) })), undefined);
});

test("BLOCK_IO_ERROR with nospace: reported, and cont is sent once there is room; RESUME clears it", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "dinv-qmpev-")), "qmp-events.sock");
  const received: string[] = [];
  let client: Socket | undefined;
  const server = createServer((s) => {
    client = s;
    s.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    s.on("data", (d) => received.push(...d.toString().trim().split("\n")));
  });
  await new Promise<void>((r) => server.listen(path, r));
  let free = 0;
  const reports: (string | undefined)[] = [];
  const stream = new QmpEventStream();
  const watch = new DiskSpaceWatch({ report: (e) => reports.push(e?.message), resume: () => stream.send("cont"), freeBytes: async () => free }, pino({ level: "silent" }), 30);
  stream.onevent = (e) => watch.onEvent(e);
  const abort = new AbortController();
  await stream.connect(path, abort.signal);
  await until(() => received.some((l) => l.includes("qmp_capabilities")), "negotiation");
  client!.write(`${JSON.stringify({ event: "BLOCK_IO_ERROR", data: { device: "docker", operation: "write", action: "stop", nospace: true, reason: "No space left on device" } })}\n`);
  await until(() => reports.length === 1, "the report");
  assert.match(reports[0]!, /launcher's disk is full: writes to docker failed and the VM is paused/);
  assert.ok(watch.paused);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!received.some((l) => l.includes('"cont"')), "no resume while the disk is still full");
  free = RESUME_FREE_BYTES;
  await until(() => received.some((l) => l.includes('"cont"')), "cont");
  client!.write(`${JSON.stringify({ event: "RESUME" })}\n`);
  await until(() => reports.length === 2, "cleared");
  assert.equal(reports[1], undefined);
  assert.ok(!watch.paused);
  watch.stop();
  abort.abort();
  server.close();
});

test("QEMU is told to pause on a full disk and to serve an events monitor", () => {
  const args = buildQemuArgs(makeConfig(), makePlan({ qmpEventsSocket: "/run/dinv/qmp-events.sock" }));
  const device = args.find((a) => a.includes("drive=docker,"))!;
  assert.match(device, /werror=enospc,rerror=report/);
  assert.ok(args.includes("socket,id=qmpev,path=/run/dinv/qmp-events.sock,server=on,wait=off"));
  assert.equal(args.filter((a) => a.startsWith("chardev=") && a.endsWith("mode=control")).length, 2);
});
