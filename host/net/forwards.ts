// The port forwards from the launcher side into the guest, for whichever user-mode network runs
// them (QEMU's SLIRP hostfwd or passt -t/-u). Pure.

import type { HostConfig } from "../config/env.js";
import { guestDockerPort } from "../guest-config.js";

/** The address a client on the launcher's side uses to reach a forward listening on `bindAddr`. */
export const reachableAddress = (bindAddr: string) => (bindAddr === "0.0.0.0" ? "127.0.0.1" : bindAddr);

/** The -netdev id of the guest network (SLIRP's forwards are added to it at run time by this id). */
export const NETDEV_ID = "net0";

export interface Forward {
  proto: "tcp" | "udp";
  /** launcher-side address to listen on */
  bind: string;
  hostPort: number;
  guestPort: number;
}

export function forwardsOf(config: Pick<HostConfig, "bindAddr" | "dockerPort" | "tcpPorts" | "udpPorts" | "tls">): Forward[] {
  const same = (proto: "tcp" | "udp") => (p: number): Forward => ({ proto, bind: config.bindAddr, hostPort: p, guestPort: p });
  return [
    { proto: "tcp", bind: config.bindAddr, hostPort: config.dockerPort, guestPort: guestDockerPort(config) },
    ...config.tcpPorts.map(same("tcp")),
    ...config.udpPorts.map(same("udp")),
  ];
}

/** SLIRP's name of a forward's listening side (hostfwd_remove takes it): PROTO:BIND:HOSTPORT. */
export const hostfwdListen = (f: Forward) => `${f.proto}:${f.bind}:${f.hostPort}`;
/** SLIRP's rule for a forward (-netdev user's hostfwd= and HMP's hostfwd_add take it). */
export const hostfwdRule = (f: Forward) => `${hostfwdListen(f)}-:${f.guestPort}`;

/** QEMU -netdev user's hostfwd options. */
export const slirpHostfwd = (f: Forward) => `hostfwd=${hostfwdRule(f)}`;

/** HMP command lines that add and remove one forward on the running VM's SLIRP network. */
export function hostfwdCommands(f: Forward): { add: string; remove: string } {
  return { add: `hostfwd_add ${NETDEV_ID} ${hostfwdRule(f)}`, remove: `hostfwd_remove ${NETDEV_ID} ${hostfwdListen(f)}` };
}

/** passt's -t/-u options (ADDR/HOSTPORT:GUESTPORT). */
export const passtForward = (f: Forward) => [f.proto === "tcp" ? "-t" : "-u", `${f.bind}/${f.hostPort}:${f.guestPort}`];
