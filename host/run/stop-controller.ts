// The launcher's stop as one state machine: none -> requested -> running -> done. A request that
// arrives before QEMU runs (side services starting, between boot attempts) is kept and carried
// out as soon as there is a VM; copies of one signal arriving together are one request; a later
// request forces QEMU to quit.

import type { Logger } from "../log.js";
import type { QemuProcess } from "../qemu/process.js";
import { forceQuit, stopVm, type StopDeps } from "./stop.js";

/** Stop requests closer together than this are one request, ms. */
export const DUPLICATE_REQUEST_MS = 2000;

export type StopPhase = "none" | "requested" | "running" | "done";

/** What a stop needs of the running VM, besides QEMU itself. */
export type VmHandle = Omit<StopDeps, "log" | "timings"> & { qemu: QemuProcess };

export class StopController {
  private phase: StopPhase = "none";
  private since = 0;
  private reason = "";
  private timeoutSeconds = 0;
  private vm: VmHandle | undefined;
  private outcome: Promise<"clean" | "forced"> | undefined;
  /** a second request forced QEMU to quit */
  forced = false;
  /** called once, when the first request arrives (the state says "stopping") */
  onrequested?: (reason: string) => void;

  constructor(
    private readonly log: Logger,
    /** how long a stop before the agent's hello waits for it, ms (see stopVm) */
    private readonly helloWaitMs?: number,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): StopPhase {
    return this.phase;
  }

  /** When the first request came, ms since the epoch; undefined before any. */
  get requestedAt(): number | undefined {
    return this.phase === "none" ? undefined : this.since;
  }

  /** Whether a stop was asked for (whatever it is doing now). */
  get requested(): boolean {
    return this.phase !== "none";
  }

  request(reason: string, timeoutSeconds: number): void {
    if (this.phase === "none") {
      this.phase = "requested";
      this.since = this.now();
      this.reason = reason;
      this.timeoutSeconds = timeoutSeconds;
      this.onrequested?.(reason);
      if (this.vm) this.begin();
      else this.log.info(`${reason}: stopping before the VM runs`);
      return;
    }
    // A terminal's Ctrl-C reaches every process of its group, and npm forwards it too.
    if (this.now() - this.since < DUPLICATE_REQUEST_MS || this.phase === "done") return;
    this.log.warn(`${reason} again: forcing QEMU to quit`);
    this.forced = true;
    if (this.vm) void forceQuit(this.vm);
  }

  /** SIGINT and SIGTERM ask for a stop; returns what stops listening. */
  onSignals(timeoutSeconds: number): () => void {
    const onSignal = (signal: NodeJS.Signals) => this.request(`received ${signal}`, timeoutSeconds);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    return () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    };
  }

  /** A VM now runs (after each boot attempt's start): a pending request starts on it. */
  attach(vm: VmHandle): void {
    this.vm = vm;
    if (this.phase === "requested") this.begin();
  }

  /** The stop's end: "clean" when the guest powered off after a clean shutdown; undefined if none ran. */
  async finished(): Promise<"clean" | "forced" | undefined> {
    return this.outcome;
  }

  private begin(): void {
    this.phase = "running";
    const vm = this.vm!;
    const timings = { stoppedGraceMs: 10_000, quitWaitMs: 10_000, ...(this.helloWaitMs !== undefined ? { helloWaitMs: this.helloWaitMs } : {}) };
    this.outcome = stopVm({ ...vm, log: this.log, timings }, this.timeoutSeconds, this.reason).then((how) => {
      this.phase = "done";
      if (how === "forced") this.forced = true;
      return how;
    });
  }
}
