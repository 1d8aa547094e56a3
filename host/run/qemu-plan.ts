// QEMU's plan for one start, from the prepared facts and what the run has decided so far. Pure.

import { join } from "node:path";
import { shareTag } from "../guest-config.js";
import { buildQemuArgs, type QemuPlan } from "../qemu/args.js";
import type { HostConfig } from "../config/env.js";
import type { Prepared } from "./prepare.js";
import { dockerDiskPath, RUN_FILES, virtiofsSocketName, volumeDiskPath } from "./run-files.js";

export interface PlanFacts {
  kernel: string;
  rootImage: string;
  initrd: string;
  shareFs: "9p" | "virtiofs";
  net: QemuPlan["net"];
  /** the docker API's forward is added later (a warm state is saved first, or a restored guest renewed) */
  withholdDockerForward: boolean;
  /** the docker disk when it comes from the cache: the job's overlay and the generation below it */
  cacheDisk?: { disk: string; backing: string | undefined };
}

/** The run directory's virtio-fs sockets, one per DINV_MOUNTS path. */
export const virtiofsSockets = (p: Pick<Prepared, "config">) => p.config.mounts.map((_, i) => join(p.config.runDir, virtiofsSocketName(i)));

export function qemuPlan(p: Pick<Prepared, "config" | "pre">, facts: PlanFacts, accel: "kvm" | "tcg"): QemuPlan {
  const { config, pre } = p;
  const run = (name: string) => join(config.runDir, name);
  return {
    accel,
    qemu: pre.qemu!,
    rootImage: facts.rootImage,
    kernel: facts.kernel,
    initrd: facts.initrd,
    dockerDisk: facts.cacheDisk?.disk ?? dockerDiskPath(config),
    ...(facts.cacheDisk?.backing ? { dockerBacking: facts.cacheDisk.backing } : {}),
    ...(config.volume ? { volumeDisk: volumeDiskPath(config) } : {}),
    agentSocket: run(RUN_FILES.agentSocket),
    qmpSocket: run(RUN_FILES.qmpSocket),
    qmpEventsSocket: run(RUN_FILES.qmpEventsSocket),
    pidFile: run(RUN_FILES.qemuPid),
    shares: config.mounts.map((path, i) => ({ tag: shareTag(i), path })),
    shareFs: facts.shareFs === "virtiofs" ? { kind: "virtiofs", sockets: virtiofsSockets(p) } : { kind: "9p" },
    net: facts.net,
    ...(pre.tscKhz ? { tscKhz: pre.tscKhz } : {}),
    ...(facts.withholdDockerForward ? { withholdDockerForward: true } : {}),
  };
}

/** A warm template QEMU beside the run's (host/warm/template.ts): its own monitor, pid file and (unserved) agent socket, no events monitor. */
export function templateDeps(config: HostConfig, runPlan: QemuPlan, qemuBinary: string) {
  const file = (name: string) => join(config.runDir, name);
  const { qmpEventsSocket: _events, ...plan } = runPlan;
  const qmpSocket = file(RUN_FILES.templateQmpSocket);
  return {
    qemuBinary,
    qmpSocket,
    argsFor: (ramPath: string) => buildQemuArgs(config, { ...plan, qmpSocket, pidFile: file(RUN_FILES.templatePid), agentSocket: file(RUN_FILES.templateAgentSocket), template: { ramPath, dockerBytes: config.dockerSizeBytes } }),
  };
}
