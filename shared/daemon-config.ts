// The guest dockerd's daemon.json, rendered from the DockerdSpec. Pure. Shared because both the
// agent (when it starts dockerd) and the launcher (for the early start from the guest init, see
// host/boot/early-boot.ts) render it, and the agent checks the two agree before adopting.

import { GUEST_DOCKER_ROOT } from "./constants.js";
import { GUEST_FILES } from "./guest-paths.js";
import type { DockerdSpec } from "./protocol/guest-config.js";

/** The guest dockerd's unix socket. */
export const DOCKER_SOCKET = "/var/run/docker.sock";
/** Where the guest keeps daemon.json (the RAM-backed overlay). */
export const DAEMON_JSON = "/etc/docker/daemon.json";
/** Where the server's TLS files go: /etc is the RAM-backed overlay, gone at power-off. */
export const TLS_DIR = "/etc/docker/tls";
/** The server's TLS files in TLS_DIR: name, mode, and the DockerdSpec.tls field that holds each. */
export const TLS_FILES = [
  { name: "ca.pem", mode: 0o644, field: "caPem" },
  { name: "cert.pem", mode: 0o644, field: "certPem" },
  { name: "key.pem", mode: 0o600, field: "keyPem" },
] as const;

/** Socket of the containerd the guest init starts early (see alpine/rootfs/usr/lib/dinv/prep). */
export const EARLY_CONTAINERD = GUEST_FILES.containerdSocket;

/**
 * Networks `docker network create` takes in the guest: outside the host's usual 172.17.0.0/16 and
 * the default bridge 172.19.0.0/16, so user-defined networks collide with neither.
 */
export const DEFAULT_ADDRESS_POOLS = [{ base: "172.24.0.0/13", size: 24 }];

/**
 * Whether the user's configuration turns on the containerd image store. Its images then live in
 * containerd's own root, which must be on the docker disk: the early containerd's root is on the
 * RAM overlay (it starts before the disk is mounted), so dockerd starts a containerd of its own.
 */
export function usesContainerdStore(spec: DockerdSpec): boolean {
  const features = spec.daemonConfig.features;
  return typeof features === "object" && features !== null && (features as Record<string, unknown>)["containerd-snapshotter"] === true;
}

/**
 * daemon.json: dinv's defaults, the user's keys over them, dinv's own on top (hosts and bridge
 * stay dinv's). With `containerd`, dockerd uses that one instead of starting its own (not with
 * the containerd image store, see usesContainerdStore).
 */
export function daemonConfig(spec: DockerdSpec, containerd?: string): Record<string, unknown> {
  return {
    "default-address-pools": DEFAULT_ADDRESS_POOLS,
    // Nothing outside the guest can route to a container's address (SLIRP and passt forward only to the
    // guest's own); dockerd's per-container raw-table filter would cost 2 iptables runs (~50 ms each under
    // TCG) at each container's start and again at its stop, 2 more per published port.
    "allow-direct-routing": true,
    ...spec.daemonConfig,
    ...(containerd && !usesContainerdStore(spec) ? { containerd } : {}),
    hosts: [`unix://${DOCKER_SOCKET}`, `tcp://0.0.0.0:${spec.tcpPort}`],
    // Explicit tls=false when plain: dockerd 20.10 otherwise sleeps 15 s to warn about a plain TCP socket.
    ...(spec.tls
      ? { tls: true, tlsverify: true, tlscacert: `${TLS_DIR}/ca.pem`, tlscert: `${TLS_DIR}/cert.pem`, tlskey: `${TLS_DIR}/key.pem` }
      : { tls: false }),
    bip: spec.bip,
    "shutdown-timeout": spec.shutdownTimeoutSeconds,
    "data-root": GUEST_DOCKER_ROOT,
  };
}

/**
 * The daemon.json keys dinv sets itself, over whatever the user gives: what daemonConfig renders
 * that no user key may replace (DINV_DOCKERD_CONFIG refuses them). Derived, not listed.
 */
export function reservedDaemonKeys(): string[] {
  const sample: DockerdSpec = { bip: "172.19.0.1/16", tcpPort: 2376, shutdownTimeoutSeconds: 5, sockUid: 0, sockGid: 0, daemonConfig: {}, tls: { caPem: "", certPem: "", keyPem: "" } };
  const keys = new Set([...Object.keys(daemonConfig(sample, "x")), ...Object.keys(daemonConfig({ ...sample, tls: undefined }, "x"))]);
  // Reserved: a key whose rendered value, with TLS or without, is not the user's when the user sets it.
  return [...keys].filter((k) => daemonConfig({ ...sample, daemonConfig: { [k]: "user" } }, "x")[k] !== "user" || daemonConfig({ ...sample, tls: undefined, daemonConfig: { [k]: "user" } }, "x")[k] !== "user").sort();
}

/** daemon.json's exact text, so two renderings can be compared byte for byte. */
export function daemonJson(spec: DockerdSpec, containerd?: string): string {
  return `${JSON.stringify(daemonConfig(spec, containerd), null, 2)}\n`;
}
