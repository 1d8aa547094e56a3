// Boot phases on one time axis (ms since QEMU was started), from the agent's own timestamps.
// The guest's uptime counts from kernel start; the hello maps it onto the host clock. Pure.

import type { Hello } from "../../shared/protocol/guest-messages.js";
import type { StatusSnapshot, StepName } from "../../shared/protocol/status.js";

export interface BootTimeline {
  /** QEMU start to kernel start, ms (estimated from the hello's uptime) */
  kernel: number;
  /** to the guest init script starting, ms */
  init?: number;
  /** to the agent's hello arriving, ms */
  hello: number;
  /** to the disks being mounted, ms */
  disksMounted?: number;
  /** to dockerd being started, ms */
  dockerdStarted?: number;
  /** to dockerd answering /_ping, ms */
  ready?: number;
}

export function bootTimeline(qemuStartedAt: number, helloReceivedAt: number, hello: Hello, status: StatusSnapshot): BootTimeline {
  const kernelAt = helloReceivedAt - hello.uptimeMs - qemuStartedAt;
  const at = (uptimeMs: number | undefined) => (uptimeMs === undefined ? undefined : Math.round(kernelAt + uptimeMs));
  const ended = (name: StepName) => at(status.steps.find((s) => s.name === name && s.state === "ok")?.endedMs);
  const timeline: BootTimeline = { kernel: Math.round(kernelAt), hello: helloReceivedAt - qemuStartedAt };
  // The init step carries the init script's start; the hello has it only after a reconnect.
  const initStep = status.steps.find((s) => s.name === "init" && s.state === "ok")?.startedMs;
  const init = at(initStep || hello.initStartedMs);
  if (init !== undefined) timeline.init = init;
  const optional: [keyof BootTimeline, StepName][] = [["disksMounted", "disks"], ["dockerdStarted", "dockerd"], ["ready", "ping"]];
  for (const [key, step] of optional) {
    const value = ended(step);
    if (value !== undefined) timeline[key] = value;
  }
  return timeline;
}

/** A warm start's phases on the same axis: no kernel or init ran, the saved VM was loaded. */
export interface WarmTimeline {
  /** QEMU start to the saved VM loaded (paused), ms */
  restored: number;
  /** to the renewed hello arriving, ms */
  hello: number;
  /** to the guest announced ready (its docker API forwarded), ms */
  ready?: number;
}

export function warmTimeline(qemuStartedAt: number, restoredMs: number, helloReceivedAt: number, readyAt?: number): WarmTimeline {
  return { restored: restoredMs, hello: helloReceivedAt - qemuStartedAt, ...(readyAt !== undefined ? { ready: readyAt - qemuStartedAt } : {}) };
}

/** The boot timeline's stop counterpart: ms from the stop's request to each of its phases. */
export interface StopTimeline {
  /** to the guest saying it is stopping (the agent took the request) */
  guestStopping?: number;
  /** to the guest saying it stopped (containers, dockerd, other processes ended; disks unmounted) */
  guestStopped?: number;
  /** to QEMU's exit */
  qemuExited: number;
}

/** The stop's timeline, or undefined when no stop was asked for. Pure. */
export function stopTimelineOf(requestedAt: number | undefined, guest: { stopping?: number; stopped?: number }, exitedAt: number): StopTimeline | undefined {
  if (requestedAt === undefined) return undefined;
  const since = (t: number) => Math.max(0, t - requestedAt);
  return {
    ...(guest.stopping !== undefined ? { guestStopping: since(guest.stopping) } : {}),
    ...(guest.stopped !== undefined ? { guestStopped: since(guest.stopped) } : {}),
    qemuExited: since(exitedAt),
  };
}

export function describeStopTimeline(t: StopTimeline): string {
  const s = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);
  return `the guest took the request after ${s(t.guestStopping)}, stopped after ${s(t.guestStopped)}, QEMU exited after ${s(t.qemuExited)}`;
}
