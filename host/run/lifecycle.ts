// The launcher's lifecycle: one phase at a time, changed only along the transitions below, each
// change kept with its reason and time. Pure.

export const LIFECYCLE = ["preparing", "booting", "ready", "degraded", "stopping", "stopped", "failed"] as const;
export type LifecyclePhase = (typeof LIFECYCLE)[number];

/** Where each phase may go. A stop may come in any phase before the end; so may a failure. */
export const TRANSITIONS: Record<LifecyclePhase, readonly LifecyclePhase[]> = {
  preparing: ["booting", "stopping", "failed"],
  booting: ["ready", "degraded", "stopping", "failed"],
  ready: ["degraded", "stopping", "failed"],
  degraded: ["ready", "stopping", "failed"],
  stopping: ["stopped", "failed"],
  stopped: [],
  failed: [],
};

export class LifecycleError extends Error {}

export interface LifecycleEntry {
  phase: LifecyclePhase;
  /** why the launcher entered it */
  reason: string;
  /** when, ms since the epoch */
  at: number;
}

export class Lifecycle {
  private readonly entries: LifecycleEntry[];
  onchange?: (entry: LifecycleEntry) => void;

  constructor(private readonly now: () => number = Date.now) {
    this.entries = [{ phase: "preparing", reason: "started", at: now() }];
  }

  get phase(): LifecyclePhase {
    return this.entries.at(-1)!.phase;
  }

  get history(): readonly LifecycleEntry[] {
    return this.entries;
  }

  /** Whether the run has ended (stopped or failed). */
  get ended(): boolean {
    return TRANSITIONS[this.phase].length === 0;
  }

  /** Move to `next`; staying in the same phase is no change. Any other move not in TRANSITIONS is a bug. */
  to(next: LifecyclePhase, reason: string): void {
    if (next === this.phase) return;
    if (!TRANSITIONS[this.phase].includes(next)) throw new LifecycleError(`the launcher cannot go from ${this.phase} to ${next} (${reason})`);
    const entry = { phase: next, reason, at: this.now() };
    this.entries.push(entry);
    this.onchange?.(entry);
  }

  /** Move to `next` if the lifecycle allows it now (a guest's ready after a stop was asked is not one). */
  offer(next: LifecyclePhase, reason: string): boolean {
    if (next === this.phase) return true;
    if (!TRANSITIONS[this.phase].includes(next)) return false;
    this.to(next, reason);
    return true;
  }
}
