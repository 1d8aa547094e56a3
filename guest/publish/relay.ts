// Ports a container published on the guest's loopback only (-p 127.0.0.1:X:Y) are not reachable
// from the user-mode network, which delivers to the guest's eth0 address. The agent relays each
// such port from that address to 127.0.0.1 in the guest; the launcher then publishes it on its
// own loopback only, so the container stays loopback-only on both sides.

import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";
import { SLIRP } from "../../shared/constants.js";
import type { PublishedPort } from "../../shared/protocol/published.js";
import { publishedKey } from "../../shared/protocol/published.js";

const GUEST_ADDRESS = SLIRP.guestAddress.split("/")[0]!;
/** A UDP peer's relay socket is closed after this long without traffic, ms. */
const UDP_IDLE_MS = 60_000;

type Relay = { close: () => void };

function tcpRelay(port: number): Promise<Relay> {
  const server: Server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, GUEST_ADDRESS, () => resolve({ close: () => server.close() }));
  });
}

function udpRelay(port: number): Promise<Relay> {
  const outer: UdpSocket = createSocket("udp4");
  const peers = new Map<string, { socket: UdpSocket; timer: NodeJS.Timeout }>();
  outer.on("message", (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let peer = peers.get(key);
    if (!peer) {
      const socket = createSocket("udp4");
      socket.on("message", (reply) => outer.send(reply, rinfo.port, rinfo.address));
      socket.on("error", () => socket.close());
      peer = { socket, timer: setTimeout(() => undefined, 0) };
      peers.set(key, peer);
    }
    clearTimeout(peer.timer);
    const current = peer;
    current.timer = setTimeout(() => {
      current.socket.close();
      peers.delete(key);
    }, UDP_IDLE_MS);
    current.socket.send(msg, port, "127.0.0.1");
  });
  return new Promise((resolve, reject) => {
    outer.once("error", reject);
    outer.bind(port, GUEST_ADDRESS, () =>
      resolve({
        close: () => {
          for (const p of peers.values()) {
            clearTimeout(p.timer);
            p.socket.close();
          }
          outer.close();
        },
      }),
    );
  });
}

export class LoopbackRelays {
  private readonly open = new Map<string, Relay>();

  /** Relay exactly the loopback-scoped ports of `ports`; returns the ones that could not be relayed, with why. */
  async apply(ports: PublishedPort[]): Promise<{ key: string; reason: string }[]> {
    const wanted = new Map(ports.filter((p) => p.scope === "loopback").map((p) => [publishedKey(p), p]));
    for (const [key, relay] of this.open) {
      if (wanted.has(key)) continue;
      relay.close();
      this.open.delete(key);
    }
    const failed: { key: string; reason: string }[] = [];
    for (const [key, p] of wanted) {
      if (this.open.has(key)) continue;
      try {
        this.open.set(key, await (p.proto === "tcp" ? tcpRelay(p.port) : udpRelay(p.port)));
      } catch (err) {
        failed.push({ key, reason: (err as Error).message });
      }
    }
    return failed;
  }

  closeAll(): void {
    for (const relay of this.open.values()) relay.close();
    this.open.clear();
  }
}
