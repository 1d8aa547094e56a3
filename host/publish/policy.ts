// Which of the guest's published ports the launcher forwards, and where. Pure. The guest is
// untrusted: it may ask for any port; the launcher forwards only what the user allowed
// (DINV_PUBLISH_PORTS), never its own ports, at most MAX_AUTO_FORWARDS, and a port the guest
// bound to its loopback only on the launcher's loopback only.

import type { PublishedPort } from "../../shared/protocol/published.js";
import type { HostConfig } from "../config/env.js";
import type { PortRange } from "../config/lists.js";

/** Most automatic forwards open at once; a larger set is refused whole. */
export const MAX_AUTO_FORWARDS = 256;

export interface AutoForward {
  proto: "tcp" | "udp";
  /** launcher-side address it listens on */
  bind: string;
  /** port, the same on both sides */
  port: number;
  /** the container that publishes it */
  container: string;
}

export interface Refusal {
  proto: "tcp" | "udp";
  port: number;
  container: string;
  /** why it is not forwarded, in words for `dinv status` */
  reason: string;
}

export interface PublishPolicy {
  allowed: PortRange[];
  /** "tcp/2375" -> what the launcher uses it for */
  reserved: Map<string, string>;
  /** "tcp/8080": already forwarded by DINV_TCP_PORTS / DINV_UDP_PORTS */
  staticPorts: Set<string>;
  /** DINV_BIND_ADDR */
  bindAddr: string;
  max: number;
}

const key = (proto: string, port: number) => `${proto}/${port}`;

export function publishPolicy(config: Pick<HostConfig, "publish" | "dockerPort" | "control" | "tcpPorts" | "udpPorts" | "bindAddr">): PublishPolicy {
  const reserved = new Map<string, string>([[key("tcp", config.dockerPort), "the docker API forward (DINV_DOCKER_PORT)"]]);
  if (config.control.tcpPort !== undefined) reserved.set(key("tcp", config.control.tcpPort), "the control API (DINV_CONTROL_PORT)");
  return {
    allowed: config.publish.ports,
    reserved,
    staticPorts: new Set([...config.tcpPorts.map((p) => key("tcp", p)), ...config.udpPorts.map((p) => key("udp", p))]),
    bindAddr: config.bindAddr,
    max: MAX_AUTO_FORWARDS,
  };
}

export type Desired = { forwards: AutoForward[]; refused: Refusal[] } | { tooMany: number };

/** The forwards a published set asks for under the policy, and what it refuses, with why. */
export function desiredForwards(ports: PublishedPort[], policy: PublishPolicy): Desired {
  const forwards: AutoForward[] = [];
  const refused: Refusal[] = [];
  for (const p of ports) {
    const k = key(p.proto, p.port);
    if (policy.staticPorts.has(k)) continue; // served by the static forward already
    const reserved = policy.reserved.get(k);
    if (reserved) refused.push({ ...pick(p), reason: `port ${p.port} is ${reserved}` });
    else if (!policy.allowed.some((r) => p.port >= r.from && p.port <= r.to)) refused.push({ ...pick(p), reason: `port ${p.port} is outside DINV_PUBLISH_PORTS` });
    else forwards.push({ proto: p.proto, bind: p.scope === "loopback" ? "127.0.0.1" : policy.bindAddr, port: p.port, container: p.container });
  }
  if (forwards.length > policy.max) return { tooMany: forwards.length };
  return { forwards, refused };
}

const pick = (p: PublishedPort) => ({ proto: p.proto, port: p.port, container: p.container });

/** A forward's identity for QEMU: protocol, address and port (the container name is a label). */
export const forwardId = (f: Pick<AutoForward, "proto" | "bind" | "port">) => `${f.proto}:${f.bind}:${f.port}`;

/** What to remove and add to go from `open` to `desired`. Pure. */
export function diffForwards(desired: AutoForward[], open: AutoForward[]): { add: AutoForward[]; remove: AutoForward[] } {
  const want = new Set(desired.map(forwardId));
  const have = new Set(open.map(forwardId));
  return { remove: open.filter((f) => !want.has(forwardId(f))), add: desired.filter((f) => !have.has(forwardId(f))) };
}
