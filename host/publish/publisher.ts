// The launcher's automatic forwards: it takes the guest's full published sets, applies the policy,
// and opens and closes forwards through the network backend until what is open is what the set
// asks for. Sets are applied one at a time, at most a few per second (the latest set waits, none is
// lost); a port that cannot be opened is reported with the container and retried when the set
// changes; nothing the guest sends can crash the launcher.

import type { PublishedPort } from "../../shared/protocol/published.js";
import type { Logger } from "../log.js";
import { RateLimiter } from "../guest-link/rate-limit.js";
import type { GuestLine } from "../guest-link/guest-text.js";
import { desiredForwards, diffForwards, forwardId, type AutoForward, type PublishPolicy, type Refusal } from "./policy.js";

/** Opens and closes one forward on the launcher side; rejects with the reason in words. */
export interface ForwardBackend {
  add(f: AutoForward): Promise<void>;
  remove(f: AutoForward): Promise<void>;
}

export interface PublishStatus {
  /** automatic forwards open now */
  forwards: AutoForward[];
  /** published ports not forwarded, with why */
  refused: Refusal[];
}

/** Sets applied per second at most, and the burst allowed. */
const SETS_PER_SECOND = 5;
const SET_BURST = 5;

export class AutoPublisher {
  private open: AutoForward[] = [];
  private refused: Refusal[] = [];
  private pending: PublishedPort[] | undefined;
  private lastSet = "";
  private applying = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly limit: RateLimiter;
  private warnedTooMany = false;
  onchange?: (status: PublishStatus) => void;

  constructor(
    private readonly policy: PublishPolicy,
    /** undefined: the network in use cannot add forwards at run time (the reason says why) */
    private readonly backend: ForwardBackend | { unavailable: string },
    private readonly log: Logger,
    now: () => number = Date.now,
    /** lines naming what the guest chose (container names, its ports) spend the guest's byte budget */
    private readonly guestLine: GuestLine = (level, line) => log[level](line),
  ) {
    this.limit = new RateLimiter(SETS_PER_SECOND, SET_BURST, now);
  }

  status(): PublishStatus {
    return { forwards: this.open.map((f) => ({ ...f })), refused: this.refused.map((r) => ({ ...r })) };
  }

  /** The guest's latest full set (identical repeats cost nothing). */
  offer(ports: PublishedPort[]): void {
    const text = JSON.stringify(ports);
    if (text === this.lastSet && this.pending === undefined) return;
    this.lastSet = text;
    this.pending = ports;
    this.kick();
  }

  /** QEMU (re)started: its network has none of the forwards any more. */
  reset(): void {
    this.open = [];
    this.refused = [];
    this.lastSet = "";
    this.pending = undefined;
    this.changed();
  }

  /** Idle: nothing being applied (tests). */
  async settled(): Promise<void> {
    while (this.applying || this.pending || this.retryTimer) await new Promise((r) => setTimeout(r, 10));
  }

  private kick(): void {
    if (this.applying || this.retryTimer || !this.pending) return;
    if (!this.limit.take().allowed) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, 1000 / SETS_PER_SECOND);
      return;
    }
    const ports = this.pending;
    this.pending = undefined;
    this.applying = true;
    void this.apply(ports)
      .catch((err: Error) => this.log.error(`applying the published ports failed: ${err.message}`))
      .finally(() => {
        this.applying = false;
        this.kick();
      });
  }

  private async apply(ports: PublishedPort[]): Promise<void> {
    const desired = desiredForwards(ports, this.policy);
    if ("tooMany" in desired) {
      if (!this.warnedTooMany) this.log.warn(`the guest publishes ${desired.tooMany} ports, more than the ${this.policy.max} dinv forwards automatically: set refused, forwards unchanged`);
      this.warnedTooMany = true;
      return;
    }
    this.warnedTooMany = false;
    const refused = [...desired.refused];
    if ("unavailable" in this.backend) {
      for (const f of desired.forwards) refused.push({ proto: f.proto, port: f.port, container: f.container, reason: this.backend.unavailable });
      if (desired.forwards.length && !sameRefusals(refused, this.refused)) this.log.warn(`published ports not forwarded: ${this.backend.unavailable}`);
      this.refused = refused;
      this.changed();
      return;
    }
    const { add, remove } = diffForwards(desired.forwards, this.open);
    for (const f of remove) {
      await this.backend.remove(f).catch((err: Error) => this.log.warn(`cannot remove the forward ${forwardId(f)}: ${err.message}`));
      this.open = this.open.filter((o) => forwardId(o) !== forwardId(f));
    }
    // Labels may change without the forward changing (another container took the port).
    const byId = new Map(desired.forwards.map((f) => [forwardId(f), f]));
    this.open = this.open.map((o) => byId.get(forwardId(o)) ?? o);
    for (const f of add) {
      try {
        await this.backend.add(f);
        this.open.push(f);
        this.guestLine("info", `published ${f.proto} ${f.bind}:${f.port} (container ${f.container})`);
      } catch (err) {
        const reason = (err as Error).message;
        refused.push({ proto: f.proto, port: f.port, container: f.container, reason });
        this.guestLine("warn", `cannot publish ${f.proto} ${f.bind}:${f.port} for container ${f.container}: ${reason}`);
      }
    }
    for (const f of remove) if (!byId.has(forwardId(f))) this.guestLine("info", `unpublished ${f.proto} ${f.bind}:${f.port} (container ${f.container})`);
    // Linear: the refusals already said, as a set of keys.
    const said = new Set(this.refused.map(refusalKey));
    for (const r of desired.refused) if (!said.has(refusalKey(r))) this.guestLine("warn", `not publishing ${r.proto} ${r.port} for container ${r.container}: ${r.reason}`);
    this.refused = refused;
    this.changed();
  }

  private changed(): void {
    this.onchange?.(this.status());
  }
}

const refusalKey = (r: Refusal) => `${r.proto}/${r.port}/${r.reason}`;

function sameRefusals(a: Refusal[], b: Refusal[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
