// What the guest is told, derived from the launcher configuration. Pure.

import { DISK_LABEL, DISK_SERIAL, GUEST_DOCKER_PORT, GUEST_DOCKER_ROOT, GUEST_DOCKER_TLS_PORT } from "../shared/constants.js";
import type { GuestCache, GuestConfig } from "../shared/protocol/guest-config.js";
import type { HostConfig } from "./config/env.js";
import type { TlsMaterial } from "./tls/certs.js";

/** Guest port of dockerd's TCP API: 2376 with TLS, 2375 plain. */
export const guestDockerPort = (config: Pick<HostConfig, "tls">) => (config.tls ? GUEST_DOCKER_TLS_PORT : GUEST_DOCKER_PORT);

/** Mount tag (9p or virtio-fs) of the i-th DINV_MOUNTS path. */
export const shareTag = (i: number) => `dinv${i}`;

/** MTU of the guest side of passt (its default): large frames are most of passt's gain. */
export const PASST_MTU = 65520;

/** Which disks the guest may format if it finds them blank (see DiskSpec.mayFormat). */
export interface MayFormat {
  docker: boolean;
  volume: boolean;
}

export function guestConfigFor(
  config: HostConfig,
  tls?: TlsMaterial,
  shareFs: "9p" | "virtiofs" = "9p",
  net: "slirp" | "passt" = "slirp",
  mayFormat: MayFormat = { docker: false, volume: false },
  cache?: GuestCache,
): GuestConfig {
  const passt = net === "passt";
  return {
    ...(passt ? { net: { mtu: PASST_MTU } } : {}),
    disks: [
      { role: "docker", serial: DISK_SERIAL.docker, mountPoint: GUEST_DOCKER_ROOT, label: DISK_LABEL.docker, mayFormat: mayFormat.docker },
      ...(config.volume
        ? [{
            role: "volume" as const,
            serial: DISK_SERIAL.volume,
            mountPoint: config.volume.path,
            label: DISK_LABEL.volume,
            mayFormat: mayFormat.volume,
            owner: { uid: config.volume.uid, gid: config.volume.gid },
          }]
        : []),
    ],
    shares: config.mounts.map((path, i) => ({ fs: shareFs, tag: shareTag(i), mountPoint: path, options: shareFs === "9p" ? config.ninepOptions : "" })),
    dockerd: {
      bip: config.bip,
      tcpPort: guestDockerPort(config),
      shutdownTimeoutSeconds: config.shutdownTimeoutSeconds,
      sockUid: config.dockerSock.uid,
      sockGid: config.dockerSock.gid,
      // With passt the bridge takes its MTU too (containers' TCP then uses large segments), unless the user set one.
      daemonConfig: passt ? { mtu: PASST_MTU, ...config.daemonConfig } : config.daemonConfig,
      ...(tls ? { tls: { caPem: tls.caPem, certPem: tls.server.certPem, keyPem: tls.server.keyPem } } : {}),
    },
    ...(cache ? { cache } : {}),
  };
}
