// Whether this run restores a saved VM, saves one after its cold boot, or neither, and why.
// The shape is computed from the configuration and probed facts (pure); the store is read here.

import { readFile, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import type { HostConfig } from "../config/env.js";
import type { GuestConfig } from "../../shared/protocol/guest-config.js";
import { guestAslrOff } from "../qemu/args.js";
import type { QemuFeatures } from "../qemu/version.js";
import { digestJson, warmIneligible, type WarmShape } from "./shape.js";
import type { SharedFile } from "../fs/shared-dir.js";
import { findState, hashShared, warmDirWritable, type Found, type WarmMeta } from "./store.js";

/** What the shape needs beyond the configuration, probed once. */
export interface WarmFacts {
  accel: "kvm" | "tcg";
  /** "max" under TCG; a digest of the host CPU's model and flags under KVM */
  cpuModel: string;
  tscKhz?: number;
  qemu: QemuFeatures;
  /** identity of the guest's kernel, initramfs and root image files */
  guestFiles: string;
  /** the cache generation the docker disk is an overlay of (its identity), when there is one */
  dockerBase?: string;
}

/** The VM's shape for this run. Pure. */
export function warmShapeOf(config: HostConfig, guest: GuestConfig, facts: WarmFacts): WarmShape {
  // What dockerd runs with; its socket owner is applied again after a restore, TLS keys never saved.
  const { sockUid: _uid, sockGid: _gid, tls: _tls, ...dockerd } = guest.dockerd;
  return {
    machine: config.machine,
    cpus: config.cpus,
    memoryBytes: config.memoryBytes,
    accel: facts.accel,
    cpuModel: facts.cpuModel,
    tscMhz: facts.accel === "tcg" ? Math.round((facts.tscKhz ?? 0) / 1000) : 0,
    qemuVersion: `${facts.qemu.version.major}.${facts.qemu.version.minor}`,
    guestFiles: facts.guestFiles,
    aslrOff: guestAslrOff(config.guestAslr, facts.accel),
    dockerSizeBytes: config.dockerSizeBytes,
    dockerd: digestJson({ dockerd, net: guest.net ?? null }),
    dockerBase: facts.dockerBase ?? "",
  };
}

/** The CPU a KVM guest sees with -cpu host: the host's model and flags. */
export async function probeCpuModel(accel: "kvm" | "tcg"): Promise<string> {
  if (accel === "tcg") return "max";
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const first = cpuinfo.split("\n\n")[0] ?? "";
  const pick = (key: string) => new RegExp(`^${key}\\s*:\\s*(.*)$`, "m").exec(first)?.[1] ?? "";
  return `host:${createHash("sha256").update(`${pick("model name")}|${pick("flags")}`).digest("hex").slice(0, 16)}`;
}

/** Size and modification time of each guest file: a rebuilt guest has new files. */
export async function probeGuestFiles(files: string[]): Promise<string> {
  const parts: string[] = [];
  for (const file of files) {
    const s = await stat(file);
    parts.push(`${s.size}:${Math.round(s.mtimeMs)}`);
  }
  return createHash("sha256").update(parts.join("|")).digest("hex").slice(0, 16);
}

export type WarmPlan =
  | { kind: "restore"; shape: WarmShape; dir: string; meta: WarmMeta; /** dockerd's configuration differs: restarted after the renewal */ reconfigure?: true }
  | { kind: "cold"; shape: WarmShape; reason: string; save: boolean };

export interface WarmPlanInput {
  config: HostConfig;
  shape: WarmShape;
  /** the docker disk exists already (the run's own data) */
  dockerDiskExists: boolean;
  /** `dinv warm save`: save whatever is stored */
  forceSave?: boolean;
}

export async function planWarm(i: WarmPlanInput): Promise<WarmPlan> {
  const { config, shape } = i;
  const ineligible = warmIneligible({ mode: i.forceSave ? "auto" : config.warm.mode, mounts: config.mounts.length, volume: !!config.volume, net: config.net, tls: !!config.tls });
  if (ineligible) return { kind: "cold", shape, reason: ineligible, save: false };
  const dir = await stat(config.warm.dir).catch(() => undefined);
  if (!dir?.isDirectory()) return { kind: "cold", shape, reason: `DINV_WARM_DIR ${config.warm.dir} does not exist (mount a volume there to keep warm states)`, save: false };
  if (i.dockerDiskExists) return { kind: "cold", shape, reason: "the docker disk exists: this run boots with its own data", save: false };
  const writable = await warmDirWritable(config.warm.dir);
  if (i.forceSave && !writable) return { kind: "cold", shape, reason: `DINV_WARM_DIR ${config.warm.dir} is read-only: nothing can be saved there`, save: false };
  const found: Found = i.forceSave ? { ok: false, reason: "dinv warm save" } : await findState(config.warm.dir, shape);
  if (found.ok) return { kind: "restore", shape, dir: found.dir, meta: found.meta, ...(found.reconfigure ? { reconfigure: true as const } : {}) };
  // A read-only warm volume (a job container's) restores only: its states come from a trusted save.
  if (!writable) return { kind: "cold", shape, reason: `${found.reason}; DINV_WARM_DIR is read-only, so this run saves none`, save: false };
  return { kind: "cold", shape, reason: found.reason, save: true };
}

/** The state file's digest against its meta file, read through the descriptor QEMU is given. */
export async function verifyState(file: SharedFile, shown: string, meta: WarmMeta): Promise<string | undefined> {
  const got = await hashShared(file, meta.state.bytes);
  if (got.bytes !== meta.state.bytes || got.sha256 !== meta.state.sha256) return `${shown} does not match its meta file (corrupted or truncated: ${got.bytes} bytes, sha256 ${got.sha256.slice(0, 12)}…)`;
  return undefined;
}

/** This run's warm plan from the launcher's configuration and probes. */
export async function warmPlanForRun(o: {
  config: HostConfig;
  guest: GuestConfig;
  accel: "kvm" | "tcg";
  qemu: QemuFeatures;
  tscKhz?: number;
  guestFiles: string[];
  dockerDiskExists: boolean;
  forceSave?: boolean;
  dockerBase?: string;
}): Promise<WarmPlan> {
  const facts: WarmFacts = {
    accel: o.accel,
    cpuModel: await probeCpuModel(o.accel),
    ...(o.tscKhz ? { tscKhz: o.tscKhz } : {}),
    qemu: o.qemu,
    guestFiles: await probeGuestFiles(o.guestFiles),
    ...(o.dockerBase ? { dockerBase: o.dockerBase } : {}),
  };
  return planWarm({ config: o.config, shape: warmShapeOf(o.config, o.guest, facts), dockerDiskExists: o.dockerDiskExists, ...(o.forceSave ? { forceSave: true } : {}) });
}
