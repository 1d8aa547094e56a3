// The run's state: one discriminated union, changed only by `next(state, event)` along the table
// below. Pure. The control API's phase, the log line of each change and the launcher's exit code
// are projections of it (controlPhase, exitCode); nothing else keeps a phase of the run.

import type { ControlPhase } from "../../shared/protocol/control.js";
import { boundText } from "../guest-link/guest-text.js";

export type Accel = "kvm" | "tcg";
type Entered = {
  /** when the run entered this state, ms since the epoch */
  at: number;
  /** why it did, in words a user reads */
  reason: string;
};

export type RunState =
  | (Entered & { phase: "preparing" })
  /** a QEMU boots the guest; attempt counts from 1 (the watchdog may start another) */
  | (Entered & { phase: "booting"; accel: Accel; attempt: number })
  /** a QEMU loads a saved VM state */
  | (Entered & { phase: "restoring"; accel: Accel })
  /** the guest is ready, the launcher holds it back: a warm state being saved, the docker API forward not yet added */
  | (Entered & { phase: "holding"; accel: Accel })
  | (Entered & { phase: "ready"; accel: Accel })
  | (Entered & { phase: "degraded"; accel: Accel })
  | (Entered & { phase: "stopping"; accel: Accel | null })
  | (Entered & { phase: "stopped"; code: 0 })
  /** code: the launcher's exit code (never 0) */
  | (Entered & { phase: "failed"; code: number });
export type RunPhase = RunState["phase"];

type GuestPhase = "booting" | "ready" | "degraded" | "stopping" | "stopped";

export type RunEvent =
  /** a QEMU process started: a boot attempt or a restore */
  | { type: "qemu-started"; accel: Accel; restore: boolean; reason: string }
  /** the guest agent's snapshot says this phase */
  | { type: "guest"; phase: GuestPhase; reason: string }
  /** a ready guest is held back by launcher work (a save, the withheld forward) */
  | { type: "hold"; reason: string }
  /** that work is done: the guest may be announced */
  | { type: "released"; reason: string }
  /** a stop was asked for (signal, `dinv stop`, the command's end, a mismatch) */
  | { type: "stop-requested"; reason: string }
  /** the run is over; code is the launcher's exit code (0: stopped, else failed) */
  | { type: "ended"; code: number; reason: string };

/** An event as the table names it: its type, with the variant that decides where it goes. */
export type EventKey = "qemu-boot" | "qemu-restore" | `guest-${GuestPhase}` | "hold" | "released" | "stop-requested" | "ended-ok" | "ended-failed";
export const EVENT_KEYS: readonly EventKey[] = ["qemu-boot", "qemu-restore", "guest-booting", "guest-ready", "guest-degraded", "guest-stopping", "guest-stopped", "hold", "released", "stop-requested", "ended-ok", "ended-failed"];
export const RUN_PHASES: readonly RunPhase[] = ["preparing", "booting", "restoring", "holding", "ready", "degraded", "stopping", "stopped", "failed"];

export function eventKey(e: RunEvent): EventKey {
  switch (e.type) {
    case "qemu-started":
      return e.restore ? "qemu-restore" : "qemu-boot";
    case "guest":
      return `guest-${e.phase}`;
    case "ended":
      return e.code === 0 ? "ended-ok" : "ended-failed";
    default:
      return e.type;
  }
}

/** "same": the event changes nothing in that phase; a pair not listed is a bug and throws. */
type Move = RunPhase | "same";
const live = (ready: Move): Partial<Record<EventKey, Move>> => ({
  "guest-booting": "booting",
  "guest-ready": ready,
  "guest-degraded": "degraded",
  "guest-stopping": "stopping",
  "guest-stopped": "stopping",
  "stop-requested": "stopping",
  "ended-failed": "failed",
});
const over: Partial<Record<EventKey, Move>> = { "guest-booting": "same", "guest-ready": "same", "guest-degraded": "same", "guest-stopping": "same", "guest-stopped": "same", "stop-requested": "same" };

export const TABLE: Record<RunPhase, Partial<Record<EventKey, Move>>> = {
  preparing: { "qemu-boot": "booting", "qemu-restore": "restoring", "stop-requested": "stopping", "ended-failed": "failed" },
  booting: { ...live("ready"), "guest-booting": "same", "qemu-boot": "booting", hold: "holding" },
  restoring: { ...live("ready"), "guest-booting": "same", "qemu-boot": "booting", hold: "holding" },
  // The guest's own "ready" is what is being held back.
  holding: { ...live("same"), hold: "same", released: "ready" },
  ready: { ...live("same") },
  degraded: { ...live("ready"), "guest-degraded": "same", hold: "holding" },
  // Once a stop runs, nothing but the end moves the run; a late QEMU start (a restore racing the
  // request) is stopped by the stop controller, not here.
  stopping: { ...over, "qemu-boot": "same", "qemu-restore": "same", hold: "same", released: "same", "ended-ok": "stopped", "ended-failed": "failed" },
  stopped: over,
  failed: over,
};

export class RunTransitionError extends Error {}

/** The state after `event` at time `at`. Pure; throws RunTransitionError for a move outside the table. */
export function next(state: RunState, event: RunEvent, at: number): RunState {
  const key = eventKey(event);
  const move = TABLE[state.phase][key];
  if (move === undefined) throw new RunTransitionError(`the run cannot take ${key} in ${state.phase} (${event.reason})`);
  if (move === "same") {
    // Another boot attempt keeps the phase but counts.
    return state;
  }
  const base = { at, reason: event.reason };
  const accel = event.type === "qemu-started" ? event.accel : "accel" in state ? state.accel : null;
  switch (move) {
    case "preparing":
      return { ...base, phase: move };
    case "booting":
      return { ...base, phase: move, accel: accel ?? "tcg", attempt: state.phase === "booting" && key === "qemu-boot" ? state.attempt + 1 : 1 };
    case "restoring":
    case "holding":
    case "ready":
    case "degraded":
      return { ...base, phase: move, accel: accel ?? "tcg" };
    case "stopping":
      return { ...base, phase: move, accel };
    case "stopped":
      return { ...base, phase: move, code: 0 };
    case "failed":
      return { ...base, phase: move, code: event.type === "ended" ? event.code : 1 };
  }
}

/** The run is over (stopped or failed). */
export const isOver = (s: RunState): s is Extract<RunState, { phase: "stopped" | "failed" }> => s.phase === "stopped" || s.phase === "failed";

/** The phase the control API serves: launcher-side problems in force make a live run degraded. */
export function controlPhase(s: RunState, hostErrors: number): ControlPhase {
  if (s.phase === "stopping" || s.phase === "stopped" || s.phase === "failed") return s.phase;
  if (hostErrors > 0) return "degraded";
  if (s.phase === "ready" || s.phase === "degraded") return s.phase;
  return "booting";
}

/** The launcher's exit code once the run is over; undefined while it runs. */
export function exitCode(s: RunState): number | undefined {
  return isOver(s) ? s.code : undefined;
}

/** The log line of a change, with the level it deserves. */
export function changeLine(s: RunState): { level: "debug" | "info"; text: string } {
  const level = s.phase === "booting" || s.phase === "preparing" ? "debug" : "info";
  return { level, text: `run ${s.phase}${s.phase === "booting" && s.attempt > 1 ? ` (attempt ${s.attempt})` : ""}: ${s.reason}` };
}

/** Longest reason the run's state carries, characters (the control API's bound). */
const REASON_MAX = 1000;

/** The one holder of the run's state: every change through `next`, logged, handed to the control API. */
export class RunStateHolder {
  private state: RunState;

  constructor(
    private readonly onchange: (state: RunState) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.state = { phase: "preparing", at: now(), reason: "started" };
  }

  get current(): RunState {
    return this.state;
  }

  /** Apply an event; reasons are bounded to what the control API carries. */
  apply(event: RunEvent): void {
    const after = next(this.state, { ...event, reason: boundText(event.reason, REASON_MAX) }, this.now());
    if (after === this.state) return;
    this.state = after;
    this.onchange(after);
  }
}
