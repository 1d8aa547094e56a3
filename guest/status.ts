// The agent's readiness state. Every change produces a full snapshot (never a delta).

import type { BootStep, GuestError, Phase, StatusSnapshot, StepName } from "../shared/protocol/status.js";

export interface Clock {
  /** wall clock, ms since the epoch */
  now(): number;
  /** guest uptime, ms since kernel start */
  uptimeMs(): number;
}

export class StatusTracker {
  private seq = 0;
  private phase: Phase = { phase: "booting" };
  private readonly steps: BootStep[] = [];
  private dockerVersion: string | undefined;
  /** problems that come and go after boot (dockerd down, disk full), by key */
  private readonly conditions = new Map<string, GuestError>();
  /** boot finished without failure: the phase now follows the conditions */
  private running = false;
  onchange?: (snapshot: StatusSnapshot) => void;

  constructor(
    private bootId: string,
    private readonly clock: Clock,
  ) {}

  /** A restored guest is a new boot as far as the host is concerned. */
  setBootId(bootId: string): void {
    this.bootId = bootId;
    this.changed();
  }

  start(name: StepName, startedMs = this.clock.uptimeMs()): void {
    const existing = this.steps.find((s) => s.name === name);
    const step: BootStep = { name, state: "running", startedMs };
    if (existing) Object.assign(existing, step, { endedMs: undefined, detail: undefined });
    else this.steps.push(step);
    this.changed();
  }

  succeed(name: StepName, detail?: string, endedMs?: number): void {
    this.end(name, "ok", detail, endedMs);
  }

  fail(name: StepName, error: Omit<GuestError, "step">): void {
    this.end(name, "failed", error.message);
    const errors = this.phase.phase === "degraded" ? this.phase.errors : [];
    this.setPhase({ phase: "degraded", errors: [...errors, { step: name, ...error }].slice(-32) });
  }

  /** A step the shutdown cut short: ended, failed, without making the guest degraded (it is stopping). */
  interrupt(name: StepName, detail: string): void {
    this.end(name, "failed", detail);
  }

  /** Boot succeeded: ready, or degraded while a condition is in force. */
  markRunning(): void {
    this.running = true;
    this.recompute();
  }

  /** Set or clear (undefined) a runtime condition; after boot the phase follows them. */
  setCondition(key: string, error: GuestError | undefined): void {
    const had = this.conditions.get(key);
    if (error) this.conditions.set(key, error);
    else if (!this.conditions.delete(key)) return;
    if (had && error && had.message === error.message) return;
    this.recompute();
  }

  private recompute(): void {
    if (!this.running || this.phase.phase === "stopping" || this.phase.phase === "stopped") return;
    const errors = [...this.conditions.values()];
    this.setPhase(errors.length ? { phase: "degraded", errors } : { phase: "ready" });
  }

  setPhase(phase: Phase): void {
    this.phase = phase;
    this.changed();
  }

  setDockerVersion(version: string): void {
    this.dockerVersion = version;
  }

  get current(): Phase {
    return this.phase;
  }

  snapshot(): StatusSnapshot {
    return {
      type: "status",
      seq: this.seq,
      at: this.clock.now(),
      uptimeMs: this.clock.uptimeMs(),
      bootId: this.bootId,
      state: this.phase,
      steps: this.steps.map((s) => ({ ...s })),
      ...(this.dockerVersion ? { dockerVersion: this.dockerVersion } : {}),
    };
  }

  private end(name: StepName, state: "ok" | "failed", detail?: string, endedMs = this.clock.uptimeMs()): void {
    const step = this.steps.find((s) => s.name === name);
    if (!step) throw new Error(`step ${name} ended before it started`);
    step.state = state;
    step.endedMs = endedMs;
    if (detail !== undefined) step.detail = detail.slice(0, 1000);
    this.changed();
  }

  private changed(): void {
    this.seq++;
    this.onchange?.(this.snapshot());
  }
}
