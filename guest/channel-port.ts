// The agent's end of the virtio-serial channel, wrapped as an ordinary duplex stream.

import { createReadStream, createWriteStream } from "node:fs";
import { open, readdir, readFile } from "node:fs/promises";
import { Duplex } from "node:stream";
import { AGENT_PORT_NAME } from "../shared/constants.js";

/** Device node of the named port; no udev in the guest, so look the name up in sysfs. */
export async function findPort(name = AGENT_PORT_NAME, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const entry of await readdir("/sys/class/virtio-ports").catch(() => [] as string[])) {
      const portName = await readFile(`/sys/class/virtio-ports/${entry}/name`, "utf8").catch(() => "");
      if (portName.trim() === name) return `/dev/${entry}`;
    }
    if (Date.now() > deadline) throw new Error(`virtio port ${name} not found`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Open the port once, read-write (a virtio port accepts one open at a time), and return it
 * as a duplex stream. Reads return end-of-file while the host side is disconnected.
 */
export async function openPort(path: string): Promise<{ stream: Duplex; close: () => Promise<void> }> {
  const handle = await open(path, "r+");
  const readable = createReadStream("", { fd: handle.fd, autoClose: false, highWaterMark: 64 * 1024 });
  const writable = createWriteStream("", { fd: handle.fd, autoClose: false });
  const stream = Duplex.from({ readable, writable });
  return { stream, close: () => handle.close() };
}
