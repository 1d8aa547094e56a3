// What the guest is told, derived from the launcher configuration. Pure.

import { DISK_LABEL, DISK_SERIAL, GUEST_DOCKER_PORT, GUEST_DOCKER_ROOT } from "../shared/constants.js";
import type { GuestConfig } from "../shared/protocol/guest-config.js";
import type { HostConfig } from "./config/env.js";

/** 9p mount tag of the i-th DINV_MOUNTS path. */
export const shareTag = (i: number) => `dinv${i}`;

export function guestConfigFor(config: HostConfig): GuestConfig {
  return {
    disks: [
      { role: "docker", serial: DISK_SERIAL.docker, mountPoint: GUEST_DOCKER_ROOT, label: DISK_LABEL.docker },
      ...(config.volume
        ? [{
            role: "volume" as const,
            serial: DISK_SERIAL.volume,
            mountPoint: config.volume.path,
            label: DISK_LABEL.volume,
            owner: { uid: config.volume.uid, gid: config.volume.gid },
          }]
        : []),
    ],
    shares: config.mounts.map((path, i) => ({ tag: shareTag(i), mountPoint: path, options: config.ninepOptions })),
    dockerd: {
      bip: config.bip,
      tcpPort: GUEST_DOCKER_PORT,
      shutdownTimeoutSeconds: config.shutdownTimeoutSeconds,
      sockUid: config.dockerSock.uid,
      sockGid: config.dockerSock.gid,
      daemonConfig: config.daemonConfig,
    },
  };
}
