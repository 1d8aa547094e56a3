// A stand-in for qemu-system-x86_64 for launcher lifecycle tests, no VM: it answers --version,
// writes its pid file, serves QMP (quit), prints console lines and, when told, plays a guest
// agent over the launcher's agent socket with the real framing and messages.
// Behaviour from FAKE_QEMU: silent | no-agent | agent | agent-hangs-in-ping; FAKE_PROTOCOL: the
// protocol version of its hello; FAKE_QEMU_LOG: a file that gets one line per start with its argv.

import { appendFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { encodeFrame, FrameDecoder } from "../../shared/framing.js";
import { INITRAMFS_STARTED, PROTOCOL_VERSION } from "../../shared/constants.js";

const args = process.argv.slice(2);
if (args.includes("--version")) {
  console.log("QEMU emulator version 7.2.15 (fake)");
  process.exit(0);
}
const mode = process.env.FAKE_QEMU ?? "agent";
const option = (flag: string, id: string) => args.find((a, i) => args[i - 1] === flag && a.includes(`id=${id}`));
const pathOf = (spec: string | undefined) => /path=([^,]+)/.exec(spec ?? "")?.[1];
const pidFile = args[args.indexOf("-pidfile") + 1];
if (pidFile) writeFileSync(pidFile, `${process.pid}\n`);
if (process.env.FAKE_QEMU_LOG) appendFileSync(process.env.FAKE_QEMU_LOG, `${JSON.stringify(args)}\n`);

// QMP: greeting, capabilities, then quit ends the process (as QEMU does).
const qmpPath = pathOf(option("-chardev", "qmp"));
if (qmpPath) {
  createServer((s) => {
    s.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    s.on("data", (d) => {
      for (const line of d.toString().split("\n").filter(Boolean)) {
        const cmd = JSON.parse(line) as { execute: string };
        s.write(`${JSON.stringify({ return: {} })}\n`);
        if (cmd.execute === "quit") setTimeout(() => process.exit(0), 10);
      }
    });
  }).listen(qmpPath);
}

const send = (sock: import("node:net").Socket, m: unknown) => sock.write(encodeFrame(Buffer.from(JSON.stringify(m))));

if (mode !== "silent") {
  console.log("[    0.836695] fake kernel line");
  console.log(`${INITRAMFS_STARTED} at 0.50s`);
}
if (mode === "agent" || mode === "agent-hangs-in-ping") {
  const agentPath = pathOf(option("-chardev", "agent"));
  const sock = connect(agentPath!);
  const bootId = `fake-${process.pid}`;
  let seq = 0;
  const status = (phase: "booting" | "ready" | "stopping" | "stopped", steps: unknown[] = []) => send(sock, { type: "status", seq: ++seq, at: Date.now(), uptimeMs: 1000 + seq, bootId, state: { phase }, steps });
  sock.on("connect", () => {
    send(sock, { type: "hello", protocolVersion: Number(process.env.FAKE_PROTOCOL ?? PROTOCOL_VERSION), bootId, agentVersion: "fake", uptimeMs: 1000 });
    status("booting");
  });
  const decoder = new FrameDecoder();
  sock.on("data", (chunk) => {
    for (const event of decoder.push(chunk)) {
      if (event.kind !== "frame") continue;
      const message = JSON.parse(event.payload.toString()) as { type: string };
      if (message.type === "config") {
        if (mode === "agent") status("ready", [{ name: "ping", state: "ok", startedMs: 1, endedMs: 2 }]);
        else status("booting", [{ name: "ping", state: "running", startedMs: 1 }]);
      }
      if (message.type === "shutdown") {
        status("stopping");
        status("stopped", [{ name: "shutdown", state: "ok", startedMs: 3, endedMs: 4, detail: "dockerd stopped; 1 filesystem(s) unmounted" }]);
        // -no-reboot: the guest's power-off ends QEMU.
        setTimeout(() => process.exit(0), 50);
      }
    }
  });
  sock.on("error", () => undefined);
}
setInterval(() => undefined, 1000);
