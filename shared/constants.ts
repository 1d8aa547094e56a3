// Names and numbers both sides of the VM boundary must agree on. Nothing else lives here.

/** Protocol version spoken on the agent channel; bumped on any incompatible change. */
export const PROTOCOL_VERSION = 1;

/** Name of the virtio-serial port carrying the agent protocol (seen in /sys/class/virtio-ports/ * /name). */
export const AGENT_PORT_NAME = "dinv.agent";

/** Largest accepted frame payload, in bytes (1 MiB); larger frames are skipped and reported. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** virtio-blk serials by which the guest finds its disks (never by probe order). */
export const DISK_SERIAL = {
  root: "dinv-root",
  docker: "dinv-docker",
  volume: "dinv-volume",
} as const;

/** Port of the guest dockerd's plain TCP API, as in the original DinV. */
export const GUEST_DOCKER_PORT = 2375;

/** Port of the guest dockerd's TLS API (--tlsverify) when TLS is on, as in docker:dind. */
export const GUEST_DOCKER_TLS_PORT = 2376;

/** Default docker bridge of the guest, as in the original DinV (172.19.0.0/16). */
export const DEFAULT_BIP = "172.19.0.1/16";

/** SLIRP's fixed addressing (QEMU user networking defaults). */
export const SLIRP = {
  guestAddress: "10.0.2.15/24",
  gateway: "10.0.2.2",
  dns: "10.0.2.3",
} as const;

/** Where the guest mounts the docker disk. */
export const GUEST_DOCKER_ROOT = "/var/lib/docker";

/** Filesystem label written on disks dinv formats, so a later boot can tell its own disks. */
export const DISK_LABEL = { docker: "dinv-docker", volume: "dinv-volume" } as const;

/** Console line prefix the guest's initramfs prints first (alpine/initramfs/init): the kernel reached userspace. */
export const INITRAMFS_STARTED = "dinv-initramfs: started";

/** Directory of the launcher's early-start files in the initramfs; the initramfs init copies it to /run. */
export const EARLY_BOOT_DIR = "dinv-boot";

/** File of that directory whose presence allows the guest init to format a blank docker disk. */
export const EARLY_MAY_FORMAT = "docker-may-format";

/** File of that directory whose presence tells the guest init not to start the early containerd (dockerd starts its own). */
export const EARLY_OWN_CONTAINERD = "dockerd-own-containerd";

/**
 * Oldest Docker stack the guest build accepts (major versions): 28 is a maintained upstream line,
 * containerd 2 its runtime. The build fails rather than fall back to an older engine.
 */
export const MIN_ENGINE = { dockerd: 28, containerd: 2 } as const;

/** The guest's docker volume driver a job asks for a cache promotion with: `docker volume create -d dinv-cache NAME`. */
export const CACHE_VOLUME_DRIVER = "dinv-cache";
