// The run's view of its guest agent: the session's messages turned into facts the run decides on
// (a new phase, a protocol mismatch), with the bookkeeping that needs no decision done here: the
// hello and the guest's stop as promises, the boot or warm timeline, host errors about the agent,
// the published ports handed to the publisher, the log lines a guest's phase change costs from its
// text budget.

import { PROTOCOL_VERSION } from "../../shared/constants.js";
import type { StatusSnapshot } from "../../shared/protocol/status.js";
import type { LauncherState } from "../control/state.js";
import type { GuestSession } from "../guest-link/session.js";
import { bootTimeline, warmTimeline } from "../guest-link/timeline.js";
import type { Logger } from "../log.js";
import type { HostConfig } from "../config/env.js";
import { budgetedLines } from "../guest-link/guest-text.js";
import { publishPolicy } from "../publish/policy.js";
import { AutoPublisher } from "../publish/publisher.js";
import { slirpBackend } from "../publish/slirp.js";
import type { QemuPlan } from "../qemu/args.js";
import type { QemuProcess } from "../qemu/process.js";
import type { WarmInfo } from "../warm/warm-start.js";

type Phase = StatusSnapshot["state"]["phase"];

/** The automatic publisher (DINV_PUBLISH=auto): SLIRP's forwards added at run time; passt cannot. */
export function publisherFor(config: HostConfig, net: QemuPlan["net"], qmpSocket: string, session: GuestSession, log: Logger): AutoPublisher {
  const backend = net?.kind === "passt"
    ? { unavailable: "passt cannot add forwards while it runs: list the port in DINV_TCP_PORTS / DINV_UDP_PORTS, or use DINV_NET=slirp" }
    : slirpBackend(qmpSocket);
  return new AutoPublisher(publishPolicy(config), backend, log, Date.now, budgetedLines(session.budget, log));
}

/** What the run decides about: the guest's phase changed (loud: its log lines fit the budget); another protocol spoken. */
export type GuestFact = { type: "phase"; phase: Phase; status: StatusSnapshot; loud: boolean } | { type: "mismatch"; guestVersion: number };

export class GuestWatch {
  /** resolves at the agent's hello (or when none of ours will come) */
  readonly helloArrived: Promise<void>;
  /** resolves when the guest reports "stopped" */
  readonly guestStopped: Promise<void>;
  /** when the guest said it was stopping and stopped, ms since the epoch */
  readonly stopAt: { stopping?: number; stopped?: number } = {};
  mismatch = false;
  readonly publisher: AutoPublisher | undefined;
  private markHello: () => void = () => undefined;
  private markStopped: () => void = () => undefined;
  private lastPhase: Phase | undefined;

  constructor(
    private readonly session: GuestSession,
    private readonly state: LauncherState,
    private readonly log: Logger,
    private readonly o: {
      publisher: AutoPublisher | undefined;
      stopping: () => boolean;
      /** the QEMU running now and how the run started, for the timeline */
      qemu: () => QemuProcess | undefined;
      warm: () => WarmInfo | undefined;
      onfact: (fact: GuestFact) => void;
    },
  ) {
    this.helloArrived = new Promise<void>((r) => (this.markHello = r));
    this.guestStopped = new Promise<void>((r) => (this.markStopped = r));
    const publisher = (this.publisher = o.publisher);
    if (publisher) {
      publisher.onchange = (s) => state.setPublished(s);
      session.onpublished = (ports) => {
        if (!o.stopping()) publisher.offer(ports);
      };
    }
    session.onmismatch = (guestVersion) => {
      state.setHostError("protocol", {
        message: `the guest agent speaks protocol version ${guestVersion}, this launcher ${PROTOCOL_VERSION}: the guest image and the launcher come from different builds`,
        hint: "rebuild both (npm run build), or use the guest files of this launcher's image",
      });
      this.mismatch = true;
      // No agent of ours will come: a stop goes on to QEMU at once.
      this.markHello();
      o.onfact({ type: "mismatch", guestVersion });
    };
    session.onhello = (h) => {
      this.markHello();
      log.info({ bootId: h.bootId, agent: h.agentVersion, uptimeMs: h.uptimeMs }, "guest agent connected");
    };
    session.ondisconnect = () => {
      // Only a guest that said hello can be missed (not a QEMU a failed restore ended).
      if (!o.stopping() && session.hello) state.setHostError("agent", { message: "the guest agent disconnected", hint: "it reconnects by itself; if not, see the console lines in the log" });
    };
    session.onstatus = (status) => this.onStatus(status);
  }

  private onStatus(status: StatusSnapshot): void {
    const { session, state, log } = this;
    const phase = status.state.phase;
    if (phase === "stopping" || phase === "stopped") this.stopAt[phase] ??= Date.now();
    if (phase === "stopped") this.markStopped();
    state.setHostError("agent", undefined);
    const qemu = this.o.qemu();
    const warm = this.o.warm();
    const timeline = !qemu || !session.hello
      ? undefined
      : warm?.start === "warm"
        ? warmTimeline(qemu.startedAt, warm.loadMs ?? 0, session.hello.receivedAt, phase === "ready" ? Date.now() : undefined)
        : bootTimeline(qemu.startedAt, session.hello.receivedAt, session.hello, status);
    state.setGuest(status, timeline);
    if (phase === this.lastPhase) return;
    this.lastPhase = phase;
    // A guest flipping its phase causes log lines: they spend its byte budget too (never the actions).
    const loud = session.budget.take(256).allowed;
    if (phase === "degraded" && loud) {
      for (const e of status.state.phase === "degraded" ? status.state.errors : []) if (session.budget.take(e.message.length).allowed) log.error({ step: e.step, hint: e.hint }, `guest degraded: ${e.message}`);
    } else if (phase !== "ready" && loud) {
      const shutdown = phase === "stopped" ? status.steps.find((s) => s.name === "shutdown")?.detail : undefined;
      log.info(`guest ${phase}${shutdown ? `: ${shutdown}` : ""}`);
    }
    this.o.onfact({ type: "phase", phase, status, loud });
  }
}
