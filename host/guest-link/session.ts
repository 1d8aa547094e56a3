// The launcher's view of the guest agent: hello, config, status snapshots, guest log lines.
// Everything the guest says is untrusted: the transport validated its shape; here we check
// that it makes sense (version, boot id, sequence) and never act on guest-supplied text.

import { PROTOCOL_VERSION } from "../../shared/constants.js";
import type { GuestConfig } from "../../shared/protocol/guest-config.js";
import type { GuestMessage, Hello } from "../../shared/protocol/guest-messages.js";
import type { Renew } from "../../shared/protocol/host-messages.js";
import type { Published, PublishedPort } from "../../shared/protocol/published.js";
import type { StatusSnapshot } from "../../shared/protocol/status.js";
import type { Logger } from "../log.js";
import type { HostTransport } from "./channel.js";
import { ByteBudget, cleanStrings } from "./guest-text.js";
import { RateLimiter } from "./rate-limit.js";

export interface ReceivedHello extends Hello {
  /** launcher clock when the hello arrived, ms since the epoch */
  receivedAt: number;
}

export class GuestSession {
  hello: ReceivedHello | undefined;
  status: StatusSnapshot | undefined;
  /** launcher clock when the agent last sent a valid message, ms since the epoch */
  lastHeardAt = 0;
  onhello?: (hello: ReceivedHello) => void;
  /** the agent speaks another protocol version: it is not configured */
  onmismatch?: (guestVersion: number) => void;
  /** launcher clock of the last hello of any version, ms (0: none): the guest runs */
  lastHelloAt = 0;
  onstatus?: (status: StatusSnapshot) => void;
  /** the guest's latest full set of published ports (a newer set for the current boot) */
  onpublished?: (ports: PublishedPort[]) => void;
  private publishedSeq = -1;
  ondisconnect?: () => void;
  /** a restored guest answered the renew: what it did, or why it could not */
  onrenewed?: (result: { ok: boolean; detail: string }) => void;
  /** the renew a restored guest gets first; until its answer, nothing else the guest says counts */
  private renewal: Renew | undefined;
  /** a job asked for a cache save through the guest's docker API (request id to answer with) */
  oncachesave?: (id: number) => void;
  private readonly freezes = new Map<number, (r: { ok: boolean; detail: string }) => void>();
  private nextFreeze = 1;
  private transport: HostTransport | undefined;
  private readonly logLimit = new RateLimiter(50, 200);
  private readonly rejectLimit = new RateLimiter(2, 10);
  /** config replies to repeated hellos of one boot (a reconnecting agent): a flood of hellos queues no flood of replies */
  private readonly configLimit = new RateLimiter(2, 4);

  constructor(
    private readonly config: GuestConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** the byte budget shared by every log line the guest causes */
    readonly budget: ByteBudget = new ByteBudget(),
  ) {}

  get connected(): boolean {
    return this.transport !== undefined;
  }

  attach(transport: HostTransport): void {
    this.transport?.close();
    this.transport = transport;
    transport.onmessage = (message) => this.handle(message);
    transport.onreject = (reason) => this.reject(reason);
    transport.onclose = () => {
      if (this.transport !== transport) return;
      this.transport = undefined;
      this.ondisconnect?.();
    };
    if (this.renewal) transport.send(this.renewal);
  }

  /**
   * The VM is restored from a saved state: its agent still runs the saving run's session and says
   * nothing by itself. The renew goes first (now, or as soon as the channel is up), and the
   * guest's renewed hello starts this run's session.
   */
  /** A restore that failed: the next guest is a cold boot, heard from as usual. */
  cancelRenewal(): void {
    this.renewal = undefined;
    this.onrenewed = undefined;
  }

  expectRenewal(renew: Renew): void {
    this.renewal = renew;
    this.transport?.send(renew);
  }

  requestStatus(): void {
    this.transport?.send({ type: "status-request" });
  }

  /** Ask the agent to stop dockerd and power off; false when no agent is connected. */
  requestShutdown(timeoutSeconds: number): boolean {
    if (!this.transport || !this.hello) return false;
    this.transport.send({ type: "shutdown", timeoutSeconds });
    return true;
  }

  close(): void {
    this.transport?.close();
  }

  /**
   * Freeze the docker disk's filesystem for a snapshot; the answer, or a failure after timeoutMs.
   * The guest thaws by itself after thawAfterMs should the thaw never come.
   */
  freeze(thawAfterMs: number, timeoutMs: number): Promise<{ ok: boolean; detail: string; id: number }> {
    const transport = this.transport;
    if (!transport || !this.hello) return Promise.resolve({ ok: false, detail: "no guest agent is connected", id: 0 });
    const id = this.nextFreeze++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.freezes.delete(id);
        resolve({ ok: false, detail: `the guest did not answer the freeze within ${timeoutMs} ms`, id });
      }, timeoutMs);
      this.freezes.set(id, (r) => {
        clearTimeout(timer);
        resolve({ ...r, id });
      });
      transport.send({ type: "freeze", id, thawAfterMs });
    });
  }

  thaw(id: number): void {
    this.transport?.send({ type: "thaw", id });
  }

  /** The answer to the guest's cache-save request. */
  answerCacheSave(id: number, ok: boolean, message: string): void {
    this.transport?.send({ type: "cache-save-result", id, ok, message: message.slice(0, 1000) });
  }

  private handle(raw: GuestMessage): void {
    this.lastHeardAt = this.now();
    // Control characters and escapes never reach the log, the CLI or the state snapshot.
    const message = cleanStrings(raw);
    if (this.renewal) {
      // Until the renewed hello: lines of the saving run's session (its boot id), not this run's.
      if (message.type !== "hello" || !message.renewed) return;
      this.renewal = undefined;
      this.onrenewed?.(message.renewed);
      if (!message.renewed.ok) return;
    }
    switch (message.type) {
      case "hello":
        return this.onHello(message);
      case "status":
        return this.onStatus(message);
      case "published":
        return this.onPublished(message);
      case "freeze-result": {
        const pending = this.freezes.get(message.id);
        this.freezes.delete(message.id);
        pending?.({ ok: message.ok, detail: message.detail });
        return;
      }
      case "cache-save-request":
        if (this.hello) this.oncachesave?.(message.id);
        return;
      case "log": {
        const gate = this.logLimit.take();
        const bytes = gate.allowed ? this.budget.take(message.msg.length) : { allowed: false, suppressed: 0 };
        const suppressed = gate.suppressed + bytes.suppressed;
        if (suppressed) this.log.warn({ suppressed }, "guest log lines suppressed (rate limit)");
        if (bytes.allowed) this.log[message.level]({ src: message.source ?? "guest" }, message.msg);
        return;
      }
    }
  }

  private onHello(hello: Hello): void {
    this.lastHelloAt = this.now();
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      this.log.error({ guest: hello.protocolVersion, host: PROTOCOL_VERSION }, "guest agent speaks another protocol version; not configuring it (rebuild the guest: npm run build)");
      this.onmismatch?.(hello.protocolVersion);
      return;
    }
    if (this.hello && this.hello.bootId !== hello.bootId) {
      const line = `guest booted again (boot ${this.hello.bootId} -> ${hello.bootId})`;
      if (this.budget.take(line.length).allowed) this.log.warn(line);
      this.status = undefined;
      this.publishedSeq = -1;
    }
    const first = !this.hello || this.hello.bootId !== hello.bootId;
    this.hello = { ...hello, receivedAt: first ? this.now() : this.hello!.receivedAt };
    if (first) this.onhello?.(this.hello);
    this.replyConfig();
  }

  private configTimer: NodeJS.Timeout | undefined;

  /**
   * The config, in answer to a hello (a reconnecting agent ignores a repeat): at a bounded rate, so
   * a flood of hellos queues no flood of replies; one held back is sent once the rate allows, so the
   * latest hello is always answered.
   */
  private replyConfig(): void {
    if (this.configTimer) return;
    if (this.configLimit.take().allowed) {
      this.transport?.send({ type: "config", config: this.config });
      return;
    }
    this.configTimer = setTimeout(() => {
      this.configTimer = undefined;
      this.replyConfig();
    }, 500);
    this.configTimer.unref();
  }

  private onStatus(status: StatusSnapshot): void {
    if (!this.hello || status.bootId !== this.hello.bootId) {
      this.reject(`status for boot ${status.bootId} without a hello for it`);
      return;
    }
    if (this.status && status.seq <= this.status.seq) return; // stale or repeated snapshot
    this.status = status;
    // Stopped, or its shutdown failed: the host holds the guest's last state, the guest may end the VM.
    if (status.state.phase === "stopped" || status.steps.some((s) => s.name === "shutdown" && s.state === "failed")) this.transport?.send({ type: "power-off" });
    this.onstatus?.(status);
  }

  private onPublished(published: Published): void {
    if (!this.hello || published.bootId !== this.hello.bootId) {
      this.reject(`published ports for boot ${published.bootId} without a hello for it`);
      return;
    }
    if (published.seq < this.publishedSeq) return; // an older set
    this.publishedSeq = published.seq;
    this.onpublished?.(published.ports);
  }

  private reject(reason: string): void {
    const gate = this.rejectLimit.take();
    if (gate.allowed) this.log.warn({ suppressed: gate.suppressed }, `rejected guest message: ${reason.slice(0, 300)}`);
  }
}
