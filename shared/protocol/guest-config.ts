// Configuration the host sends the guest once it said hello. Derived from the DINV_* variables.

import { z } from "zod";

const uid = z.number().int().min(0).max(4294967294);
const guestPath = z.string().min(1).max(4096).regex(/^\//, "must be an absolute path");

export const DiskSpecSchema = z.object({
  /** what the disk holds */
  role: z.enum(["docker", "volume"]),
  /** virtio-blk serial the guest looks the disk up by */
  serial: z.string().min(1).max(20),
  /** guest path to mount it on */
  mountPoint: guestPath,
  /** filesystem label to write when formatting a blank disk */
  label: z.string().min(1).max(16),
  /**
   * whether the guest may format the disk when it reads as blank: only when the launcher created the
   * image in this run or finds it never held data (a blank read can also be a failed read)
   */
  mayFormat: z.boolean().default(false),
  /** owner of the mounted root directory, applied after mount (volume only) */
  owner: z.object({ uid, gid: uid }).optional(),
});
export type DiskSpec = z.infer<typeof DiskSpecSchema>;

export const ShareSpecSchema = z.object({
  /** transport QEMU exposes the share with: virtio-9p, or virtio-fs served by virtiofsd */
  fs: z.enum(["9p", "virtiofs"]).default("9p"),
  /** mount tag QEMU exposes the share under */
  tag: z.string().min(1).max(31),
  /** guest path to mount it on (the same path as on the launcher side) */
  mountPoint: guestPath,
  /** extra 9p mount options, comma-separated (validated by the launcher, checked again here; unused for virtiofs) */
  options: z.string().max(200).regex(/^[a-z0-9=,]*$/).default(""),
});
export type ShareSpec = z.infer<typeof ShareSpecSchema>;

const pem = (kind: string) => z.string().max(16384).regex(new RegExp(`^-----BEGIN ${kind}-----\\n[\\s\\S]+-----END ${kind}-----\\n?$`));

export const DockerdTlsSchema = z.object({
  /** PEM of the CA client certificates must be signed by */
  caPem: pem("CERTIFICATE"),
  /** PEM of dockerd's server certificate */
  certPem: pem("CERTIFICATE"),
  /** PEM of dockerd's private key (kept in the guest's RAM-backed /etc) */
  keyPem: pem("(EC |RSA )?PRIVATE KEY"),
});

export const DockerdSpecSchema = z.object({
  /** docker0 bridge address with prefix, e.g. 172.19.0.1/16 */
  bip: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/),
  /** guest TCP port of the docker API (plain, or TLS when tls is set) */
  tcpPort: z.number().int().min(1).max(65535),
  /** dockerd's shutdown timeout for containers, seconds */
  shutdownTimeoutSeconds: z.number().int().min(0).max(3600),
  /** owner uid of /var/run/docker.sock */
  sockUid: uid,
  /** owner gid of /var/run/docker.sock */
  sockGid: uid,
  /** extra daemon.json keys, merged under dinv's own */
  daemonConfig: z.record(z.string(), z.unknown()).default({}),
  /** TLS material; when present the TCP API requires a client certificate (--tlsverify) */
  tls: DockerdTlsSchema.optional(),
});
export type DockerdSpec = z.infer<typeof DockerdSpecSchema>;

export const GuestNetSchema = z.object({
  /** MTU of the guest's eth0, bytes (passt carries up to 65520; SLIRP's 1500 needs no setting) */
  mtu: z.number().int().min(576).max(65520),
});

/** The shared docker-disk cache, as the guest takes part in it (DINV_CACHE_DIR). */
export const GuestCacheSchema = z.object({
  /** the docker disk is a cache generation: its containers (a job's leftovers) are removed before dockerd is ready */
  removeContainers: z.boolean(),
  /** serve the dinv-cache volume driver: `docker volume create -d dinv-cache NAME` asks the host to promote now */
  saveRequests: z.boolean(),
});
export type GuestCache = z.infer<typeof GuestCacheSchema>;

export const GuestConfigSchema = z.object({
  /** the guest network's settings; absent: as the init set it up (SLIRP's defaults) */
  net: GuestNetSchema.optional(),
  disks: z.array(DiskSpecSchema).max(4),
  shares: z.array(ShareSpecSchema).max(64),
  dockerd: DockerdSpecSchema,
  cache: GuestCacheSchema.optional(),
});
export type GuestConfig = z.infer<typeof GuestConfigSchema>;
