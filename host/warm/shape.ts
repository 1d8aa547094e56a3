// What a saved VM state must share with a run to be restored in it: the VM's shape. Pure.
// A restore with any difference fails outright (QEMU refuses other devices or RAM sizes) or, worse,
// resumes a guest that does not fit its host (another CPU, kernel or dockerd configuration).

import { createHash } from "node:crypto";
import { z } from "zod";

/** Everything that must be equal, as plain values (kept in the state's meta file). */
export const WarmShapeSchema = z.object({
  /** DINV_MACHINE */
  machine: z.enum(["microvm", "q35"]),
  /** DINV_CPUS, vCPUs */
  cpus: z.number().int().min(1).max(64),
  /** DINV_MEMORY, bytes */
  memoryBytes: z.number().int().positive(),
  /** the accelerator the VM ran under */
  accel: z.enum(["kvm", "tcg"]),
  /** the CPU the guest saw: TCG's emulated "max", or the host's model and flags under KVM (-cpu host) */
  cpuModel: z.string().max(200),
  /** the host TSC rate told to a TCG guest, MHz (the guest keeps the kernel's calibration) */
  tscMhz: z.number().int().nonnegative(),
  /** QEMU's major.minor version */
  qemuVersion: z.string().max(20),
  /** identity (size and modification time) of the kernel, initramfs and root image files */
  guestFiles: z.string().max(200),
  /** DINV_GUEST_ASLR as applied: the kernel command line differs */
  aslrOff: z.boolean(),
  /** DINV_DOCKER_SIZE, bytes */
  dockerSizeBytes: z.number().int().positive(),
  /** digest of dockerd's configuration in the guest (bridge, ports, timeouts, daemon.json keys) */
  dockerd: z.string().max(64),
  /** the cache generation under the docker disk (key, number, creation time, size); "" when none */
  dockerBase: z.string().max(300).default(""),
});
export type WarmShape = z.infer<typeof WarmShapeSchema>;

/** What each field is called where a user sets or sees it, for the one log line a mismatch gives. */
const LABEL: Record<keyof WarmShape, string> = {
  machine: "DINV_MACHINE",
  cpus: "DINV_CPUS",
  memoryBytes: "DINV_MEMORY (bytes)",
  accel: "the accelerator",
  cpuModel: "the host CPU",
  tscMhz: "the host TSC rate (MHz)",
  qemuVersion: "the QEMU version",
  guestFiles: "the guest files (kernel, initramfs, root image)",
  aslrOff: "DINV_GUEST_ASLR",
  dockerSizeBytes: "DINV_DOCKER_SIZE (bytes)",
  dockerd: "dockerd's configuration (DINV_BIP, DINV_SHUTDOWN_TIMEOUT, DINV_DOCKERD_CONFIG, registry options)",
  dockerBase: "the cache generation under the docker disk (DINV_CACHE_KEY)",
};

/** The first difference between a saved shape and this run's, named; undefined when they match. */
export function shapeMismatch(saved: WarmShape, current: WarmShape): string | undefined {
  for (const key of Object.keys(LABEL) as (keyof WarmShape)[]) {
    if (saved[key] !== current[key]) return `${LABEL[key]} differs: the state has ${JSON.stringify(saved[key])}, this run ${JSON.stringify(current[key])}`;
  }
  return undefined;
}

/**
 * A state that differs from this run only in dockerd's configuration can still be restored: the
 * agent then restarts dockerd with this run's ("warm, reconfigured"). Pure.
 */
export function onlyDockerdDiffers(saved: WarmShape, current: WarmShape): boolean {
  return saved.dockerd !== current.dockerd && shapeMismatch({ ...saved, dockerd: current.dockerd }, current) === undefined;
}

/** The directory name a shape's state is kept under: a digest of its fields in a fixed order. */
export function shapeKey(shape: WarmShape): string {
  const ordered = (Object.keys(LABEL) as (keyof WarmShape)[]).map((k) => [k, shape[k]]);
  return createHash("sha256").update(JSON.stringify(ordered)).digest("hex").slice(0, 16);
}

/** A stable digest of a JSON value (object keys sorted). */
export function digestJson(value: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canon(x)])) : v;
  return createHash("sha256").update(JSON.stringify(canon(value))).digest("hex").slice(0, 32);
}

/** What makes a run unable to use a saved state at all, whatever is saved; undefined: it can. */
export interface WarmEligibilityInput {
  mode: "auto" | "off";
  mounts: number;
  volume: boolean;
  net: "slirp" | "passt";
  tls: boolean;
}

export function warmIneligible(i: WarmEligibilityInput): string | undefined {
  if (i.mode === "off") return "DINV_WARM_START=off";
  // QEMU cannot migrate a VM with a 9p export mounted, and QEMU 7.2 none with vhost-user-fs.
  if (i.mounts > 0) return "DINV_MOUNTS is set: QEMU cannot save a VM with shared folders";
  if (i.volume) return "DINV_VOLUME_PATH is set: the volume disk is not part of a saved state";
  // passt's connection to QEMU is a socket a restored QEMU cannot take over from the saving one.
  if (i.net === "passt") return "DINV_NET=passt: warm starts use SLIRP";
  if (i.tls) return "DOCKER_TLS_CERTDIR is set: dockerd's TLS keys are made per run, a saved dockerd would hold another run's";
  return undefined;
}
