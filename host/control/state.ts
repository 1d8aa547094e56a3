// The launcher's state as the control API serves it: one snapshot, pushed whole on every change.

import type { ControlPhase, DinvState } from "../../shared/protocol/control.js";
import type { StatusSnapshot } from "../../shared/protocol/status.js";
import type { HostConfig } from "../config/env.js";
import type { BootTimeline, WarmTimeline } from "../guest-link/timeline.js";
import { forwardsOf, reachableAddress } from "../net/forwards.js";
import { controlPhase, type RunState } from "../run/state.js";
import type { PublishStatus } from "../publish/publisher.js";

type HostError = DinvState["errors"][number];

export class LauncherState {
  private seq = 0;
  private accel: "kvm" | "tcg" | null = null;
  private timeline: Record<string, number> | undefined;
  private run: RunState;
  private guest: StatusSnapshot | null = null;
  /** host-detected problems in force, by what they are about (e.g. "agent-silent") */
  private readonly hostErrors = new Map<string, HostError>();
  private readonly listeners = new Set<(state: DinvState) => void>();
  private published: PublishStatus = { forwards: [], refused: [] };
  private warm: DinvState["warm"];
  private cache: DinvState["cache"];

  constructor(
    private readonly config: HostConfig,
    private readonly startedAt = Date.now(),
  ) {
    this.run = { phase: "preparing", at: startedAt, reason: "started" };
  }

  subscribe(listener: (state: DinvState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setAccel(accel: "kvm" | "tcg"): void {
    this.accel = accel;
    this.changed();
  }

  setGuest(guest: StatusSnapshot | null, timeline?: BootTimeline | WarmTimeline): void {
    this.guest = guest;
    if (timeline) this.timeline = { ...timeline };
    this.changed();
  }

  /** Set or clear (undefined) the host-detected problem about `key`. */
  setHostError(key: string, error: Omit<HostError, "source"> | undefined): void {
    if (error) this.hostErrors.set(key, { source: "host", ...error });
    else if (!this.hostErrors.delete(key)) return;
    this.changed();
  }

  setPublished(status: PublishStatus): void {
    this.published = status;
    this.changed();
  }

  setCache(cache: NonNullable<DinvState["cache"]>): void {
    this.cache = cache;
    this.changed();
  }

  setWarm(warm: NonNullable<DinvState["warm"]>): void {
    this.warm = warm;
    this.changed();
  }

  /** The run's state, as its owner (the Run) changed it. */
  setRun(run: RunState): void {
    this.run = run;
    this.changed();
  }

  get phase(): ControlPhase {
    return controlPhase(this.run, this.hostErrors.size);
  }

  snapshot(): DinvState {
    const { config, guest, run } = this;
    const guestErrors = guest?.state.phase === "degraded" ? guest.state.errors.map((e) => ({ source: "guest" as const, ...e })) : [];
    const host = reachableAddress(config.bindAddr);
    return {
      type: "state",
      seq: this.seq,
      at: Date.now(),
      phase: this.phase,
      reason: run.reason,
      accel: this.accel,
      pid: process.pid,
      startedAt: this.startedAt,
      vm: { machine: config.machine, cpus: config.cpus, memoryBytes: config.memoryBytes },
      dockerHost: `tcp://${host}:${config.dockerPort}`,
      ...(config.tls ? { dockerCertPath: `${config.tls.certDir}/client` } : {}),
      ports: { tcp: config.tcpPorts, udp: config.udpPorts },
      forwards: [
        ...forwardsOf(config).map((f) => ({ proto: f.proto, address: f.bind, port: f.hostPort, guestPort: f.guestPort, source: "static" as const })),
        ...this.published.forwards.map((f) => ({ proto: f.proto, address: f.bind, port: f.port, guestPort: f.port, source: "auto" as const, container: f.container })),
      ],
      refused: this.published.refused,
      mounts: config.mounts,
      ...(guest?.dockerVersion ? { dockerVersion: guest.dockerVersion } : {}),
      steps: guest?.steps ?? [],
      errors: [...this.hostErrors.values(), ...guestErrors],
      ...(this.timeline ? { timeline: this.timeline } : {}),
      guest,
      ...(this.warm ? { warm: this.warm } : {}),
      ...(this.cache ? { cache: this.cache } : {}),
    };
  }

  private changed(): void {
    this.seq++;
    const state = this.snapshot();
    for (const listener of this.listeners) listener(state);
  }
}
