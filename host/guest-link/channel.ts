// The launcher's end of the agent channel: a unix socket QEMU connects to (the launcher
// listens before QEMU starts). One guest connection at a time; a new one replaces the old.

import { createServer, type Server, type Socket } from "node:net";
import { lstat, unlink } from "node:fs/promises";
import { GuestMessageSchema, type GuestMessage } from "../../shared/protocol/guest-messages.js";
import type { HostMessage } from "../../shared/protocol/host-messages.js";
import { StreamTransport, type Transport } from "../../shared/transport.js";

export type HostTransport = Transport<GuestMessage, HostMessage>;

/** Remove a leftover socket file, and only a socket file (never anything else). */
export async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to remove it`);
  await unlink(path);
}

export async function listenAgent(path: string, onTransport: (t: HostTransport) => void): Promise<Server> {
  await removeStaleSocket(path);
  let current: { socket: Socket } | undefined;
  const server = createServer((socket) => {
    current?.socket.destroy();
    current = { socket };
    onTransport(new StreamTransport<GuestMessage, HostMessage>(socket, GuestMessageSchema));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  return server;
}
