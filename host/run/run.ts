// One run of `dinv run`, owned by one object: its state (host/run/state.ts: every change goes
// through `next`, and the control API, the log and the exit code are projections of it), the
// facts that change during the run, and the reactions to the guest, QEMU, signals and the control
// API. Warm start is a plan with effects this object calls; a stop is honoured whenever it
// arrives (StopController).

import { rm } from "node:fs/promises";
import { boundText, budgetedLines } from "../guest-link/guest-text.js";
import { join } from "node:path";
import { PROTOCOL_VERSION } from "../../shared/constants.js";
import type { StatusSnapshot } from "../../shared/protocol/status.js";
import { GuestSession } from "../guest-link/session.js";
import { bootTimeline, describeStopTimeline, stopTimelineOf, warmTimeline } from "../guest-link/timeline.js";
import { bootInitrd } from "../boot/initrd.js";
import { BootFileError } from "../boot/unpack-cache.js";
import { LauncherState } from "../control/state.js";
import { guestConfigFor } from "../guest-config.js";
import type { GuestConfig } from "../../shared/protocol/guest-config.js";
import type { Logger } from "../log.js";
import { publishPolicy } from "../publish/policy.js";
import { AutoPublisher } from "../publish/publisher.js";
import { slirpBackend } from "../publish/slirp.js";
import { buildQemuArgs, type QemuPlan } from "../qemu/args.js";
import type { QemuProcess } from "../qemu/process.js";
import type { WarmStart } from "../warm/warm-start.js";
import { bootWithWatchdog, type BootResult } from "./boot.js";
import { runCommand } from "./command.js";
import { openEndpoints } from "./endpoints.js";
import { runVerdict } from "./exit-code.js";
import { EXIT, type LaunchOptions } from "./launch-options.js";
import { changeLine, exitCode, isOver, next, type RunEvent, type RunState } from "./state.js";
import { VmMonitor } from "./monitor.js";
import type { Prepared } from "./prepare.js";
import type { PreparedFiles } from "./prepare-files.js";
import { qemuPlan, virtiofsSockets } from "./qemu-plan.js";
import { RUN_FILES, runPath } from "./run-files.js";
import { startSideServices } from "./side-services.js";
import { StopController } from "./stop-controller.js";

type Accel = "kvm" | "tcg";
type Services = Exclude<Awaited<ReturnType<typeof startSideServices>>, string>;

/** Longest reason the run's state carries, characters (the control API's bound). */
const REASON_MAX = 1000;

export class Run {
  private runState: RunState = { phase: "preparing", at: Date.now(), reason: "started" };
  private readonly log: Logger;
  private readonly qemuBinary: string;
  private readonly warm: WarmStart;
  private readonly stopper: StopController;
  private readonly state: LauncherState;
  /** QEMU's QMP sockets: the same paths for every QEMU of the run */
  private readonly qmpSocket: string;
  private readonly qmpEventsSocket: string;
  private releasing: Promise<void> | undefined;
  private session!: GuestSession;
  private services!: Services;
  private monitor!: VmMonitor;
  private publisher: AutoPublisher | undefined;
  // What QEMU is started with; the side services and the early-start archive may change them.
  private shareFs: "9p" | "virtiofs";
  private net: QemuPlan["net"] = { kind: "slirp" };
  private kernel: string;
  private rootImage: string;
  private initrd: string;
  private initrdMade = false;
  // What the run has seen so far.
  private qemu: QemuProcess | undefined;
  private accel: Accel;
  private lastPhase = "";
  private mismatch = false;
  private toldAslr = false;
  private commandExit: number | undefined;
  private commandStarted = false;
  private markHello: () => void = () => undefined;
  private readonly helloArrived = new Promise<void>((r) => (this.markHello = r));
  private markGuestStopped: () => void = () => undefined;
  private readonly guestStopped = new Promise<void>((r) => (this.markGuestStopped = r));
  private readonly closers: (() => unknown)[] = [];
  /** when the guest said it was stopping and stopped, ms since the epoch (the stop's timeline) */
  private readonly guestStopAt: { stopping?: number; stopped?: number } = {};

  constructor(
    private readonly p: Prepared,
    private readonly files: PreparedFiles,
    private readonly options: LaunchOptions,
  ) {
    this.log = options.log;
    this.qemuBinary = options.qemuBinary ?? "qemu-system-x86_64";
    this.warm = files.warm;
    this.shareFs = p.shareChoice.fs === "virtiofs" ? "virtiofs" : "9p";
    this.kernel = p.pre.guest.kernel;
    this.rootImage = p.pre.guest.rootImage;
    this.initrd = p.pre.guest.initrd;
    this.accel = p.choice.accel === "kvm" ? "kvm" : "tcg";
    this.stopper = new StopController(this.log, options.timings?.helloWaitMs);
    this.state = new LauncherState(p.config);
    this.qmpSocket = runPath(p.config.runDir, RUN_FILES.qmpSocket);
    this.qmpEventsSocket = runPath(p.config.runDir, RUN_FILES.qmpEventsSocket);
  }

  /** The run's state now. */
  get current(): RunState {
    return this.runState;
  }

  /** Every change of the run's state: along the table, logged, published to the control API. */
  private apply(event: RunEvent): void {
    const after = next(this.runState, { ...event, reason: boundText(event.reason, REASON_MAX) }, Date.now());
    if (after === this.runState) return;
    this.runState = after;
    const line = changeLine(after);
    this.log[line.level]({ phase: after.phase }, line.text);
    this.state.setRun(after);
  }

  private run = (name: string) => join(this.p.config.runDir, name);

  /** QEMU's plan for an accelerator, from the facts of the moment. */
  plan(accel: Accel): QemuPlan {
    return qemuPlan(this.p, { kernel: this.kernel, rootImage: this.rootImage, initrd: this.initrd, shareFs: this.shareFs, net: this.net, withholdDockerForward: this.warm.withholdForward }, accel);
  }

  /** The whole run, to its exit code. */
  async start(): Promise<number> {
    const { config } = this.p;
    const services = await startSideServices(config, this.p.shareChoice, { run: this.run, virtiofsSockets: virtiofsSockets(this.p) }, this.log);
    if (typeof services === "string") {
      await this.files.discardUnpacked();
      await this.files.runDir.release();
      this.log.error(services);
      this.apply({ type: "ended", code: EXIT.config, reason: services });
      return EXIT.config;
    }
    this.services = services;
    this.shareFs = services.shareFs;
    this.net = services.net;
    if (this.warm.info) this.state.setWarm(this.warm.info);
    const guestConfig = guestConfigFor(config, services.tls, this.shareFs, this.net?.kind === "passt" ? "passt" : "slirp", this.files.mayFormat);
    // The early-start archive is for a boot: a restore's RAM replaces whatever initramfs QEMU loads.
    if (!this.warm.restoring) await this.makeBootInitrd(guestConfig);
    this.session = new GuestSession(guestConfig, this.log);
    this.wireGuest();
    this.wireStop();
    await this.serve();

    const boot = await this.files.boot;
    if (boot instanceof Error) {
      await this.end(EXIT.failed, boot.message);
      if (!(boot instanceof BootFileError)) throw boot;
      this.log.error(boot.message);
      return EXIT.failed;
    }
    this.kernel = boot.kernel;
    this.rootImage = boot.rootImage;
    await this.options.beforeBoot?.();
    const booted = await this.boot(guestConfig);
    if (!booted.ok) {
      // A stop that came before any QEMU ran: nothing was started, nothing can be lost.
      if (booted.stopped) {
        this.log.info("stopped before the VM started");
        return this.end(EXIT.ok, "stopped before the VM started");
      }
      this.log.error(`${booted.reason}; giving up`);
      return this.end(EXIT.failed, booted.reason);
    }
    const exit = await booted.qemu.exited;
    return this.finish(exit);
  }

  private async makeBootInitrd(guestConfig: GuestConfig): Promise<void> {
    this.initrdMade = true;
    this.initrd = await bootInitrd(this.p.pre.guest.initrd, this.p.config.runDir, guestConfig, this.p.config.earlyStart, this.log);
  }

  /** A restore when one was planned, else (or when it fails) a boot under the watchdog. */
  private async boot(guestConfig: GuestConfig): Promise<BootResult> {
    const { choice } = this.p;
    const timings = this.options.timings;
    if (this.warm.restoring) {
      // Nothing of a restored guest's boot is printed again; its init never runs, so nothing to wait for.
      const restored = await this.warm.restore({
        qemuBinary: this.qemuBinary,
        argsFor: (statePath) => buildQemuArgs(this.p.config, { ...this.plan(this.accel), incoming: statePath }),
        onStart: (q) => this.onQemu(q, this.accel, () => false, true),
        qmpSocket: this.qmpSocket,
        session: this.session,
        log: this.log,
      });
      if (this.warm.info) this.state.setWarm(this.warm.info);
      if (restored && "qemu" in restored) return { ok: true, qemu: restored.qemu, accel: this.accel };
      if (restored) return { ok: false, reason: "stopped while restoring", stopped: true };
    }
    if (!this.initrdMade) await this.makeBootInitrd(guestConfig);
    return bootWithWatchdog({
      qemuBinary: this.qemuBinary,
      argsFor: (a) => buildQemuArgs(this.p.config, this.plan(a)),
      beforeStart: () => this.services.beforeStart(),
      accel: this.accel,
      // Any hello, even one of another protocol version, shows the guest runs under this accelerator.
      helloSince: (since) => this.session.lastHelloAt >= since,
      stopping: () => this.stopper.requested,
      log: this.log,
      consoleBudget: (bytes) => this.session.budget.take(bytes),
      consoleTimeoutMs: timings?.consoleTimeoutMs ?? 60_000,
      // DINV_ACCEL=kvm was asked for: never fall back to TCG behind the user's back.
      ...(choice.accel === "kvm" && choice.verifyBoot ? { kvmHelloTimeoutMs: timings?.kvmHelloTimeoutMs ?? 30_000 } : {}),
      attempts: 3,
      onStart: (q, a, reachedInitramfs) => this.onQemu(q, a, reachedInitramfs),
    });
  }

  /** Each QEMU started (a boot attempt or a restore). */
  private onQemu(q: QemuProcess, a: Accel, reachedInitramfs: () => boolean, restore = false): void {
    const { config, pre } = this.p;
    this.qemu = q;
    this.monitor.follow(q, this.qmpEventsSocket);
    this.publisher?.reset();
    const session = this.session;
    this.stopper.attach({ qemu: q, qmpSocket: this.qmpSocket, requestShutdown: (t: number) => session.requestShutdown(t), agentSeen: () => !!session.hello, earlyStart: this.initrd !== pre.guest.initrd, hello: this.helloArrived, guestStopped: this.guestStopped, reachedInitramfs });
    this.accel = a;
    this.state.setAccel(a);
    this.apply({ type: "qemu-started", accel: a, restore, reason: restore ? `QEMU loads the saved VM state (${a})` : `QEMU boots the guest (${a})` });
    if (config.guestAslr === "auto" && a === "tcg" && !this.toldAslr) {
      this.toldAslr = true;
      this.log.info("TCG: the guest's processes run without address-space randomisation (each exec costs ~3x less to translate); DINV_GUEST_ASLR=on keeps it");
    }
  }

  /** The guest's messages, and what the run does about them. */
  private wireGuest(): void {
    const { config } = this.p;
    const { session, state, log } = this;
    if (config.publish.mode === "auto") {
      const publisher = new AutoPublisher(publishPolicy(config), this.net?.kind === "passt"
        ? { unavailable: "passt cannot add forwards while it runs: list the port in DINV_TCP_PORTS / DINV_UDP_PORTS, or use DINV_NET=slirp" }
        : slirpBackend(this.qmpSocket), log, Date.now, budgetedLines(session.budget, log));
      this.publisher = publisher;
      publisher.onchange = (s) => state.setPublished(s);
      session.onpublished = (ports) => {
        if (!this.stopper.requested) publisher.offer(ports);
      };
    }
    session.onmismatch = (guestVersion) => {
      state.setHostError("protocol", {
        message: `the guest agent speaks protocol version ${guestVersion}, this launcher ${PROTOCOL_VERSION}: the guest image and the launcher come from different builds`,
        hint: "rebuild both (npm run build), or use the guest files of this launcher's image",
      });
      this.mismatch = true;
      // No agent of ours will come: the stop goes on to QEMU at once.
      this.markHello();
      this.stop("the guest agent speaks another protocol version");
    };
    session.onhello = (h) => {
      this.markHello();
      log.info({ bootId: h.bootId, agent: h.agentVersion, uptimeMs: h.uptimeMs }, "guest agent connected");
    };
    session.ondisconnect = () => {
      // Only a guest that said hello can be missed (not a QEMU a failed restore ended).
      if (!this.stopper.requested && session.hello) state.setHostError("agent", { message: "the guest agent disconnected", hint: "it reconnects by itself; if not, see the console lines in the log" });
    };
    session.onstatus = (status) => this.onGuestStatus(status);
  }

  private onGuestStatus(status: StatusSnapshot): void {
    const { session, state, log, qemu } = this;
    if (status.state.phase === "stopping" || status.state.phase === "stopped") this.guestStopAt[status.state.phase] ??= Date.now();
    if (status.state.phase === "stopped") this.markGuestStopped();
    state.setHostError("agent", undefined);
    const timeline = !qemu || !session.hello
      ? undefined
      : this.warm.info?.start === "warm"
        ? warmTimeline(qemu.startedAt, this.warm.info.loadMs ?? 0, session.hello.receivedAt, status.state.phase === "ready" ? Date.now() : undefined)
        : bootTimeline(qemu.startedAt, session.hello.receivedAt, session.hello, status);
    state.setGuest(status, timeline);
    const phase = status.state.phase;
    if (phase === this.lastPhase) return;
    this.lastPhase = phase;
    // A guest flipping its phase causes log lines: they spend its byte budget too (never the actions).
    const loud = session.budget.take(256).allowed;
    if (phase === "ready") {
      if (!qemu) return;
      if (!this.warm.withholdForward) return this.announceReady(loud);
      this.apply({ type: "hold", reason: this.warm.restoring ? "the restored guest is ready; adding the docker API forward" : "the guest is ready; saving its state for warm starts first" });
      this.releasing ??= this.releaseWarm();
      return;
    }
    this.apply({ type: "guest", phase, reason: phase === "degraded" ? status.state.errors.map((e) => e.message).join("; ") : `the guest is ${phase}` });
    if (status.state.phase === "degraded") {
      if (loud) for (const e of status.state.errors) if (session.budget.take(e.message.length).allowed) log.error({ step: e.step, hint: e.hint }, `guest degraded: ${e.message}`);
      if (this.options.command?.length && this.commandExit === undefined) {
        this.commandExit = EXIT.failed;
        this.stop("the guest is degraded; not running the command");
      }
    } else {
      const shutdown = phase === "stopped" ? status.steps.find((s) => s.name === "shutdown")?.detail : undefined;
      if (loud) log.info(`guest ${phase}${shutdown ? `: ${shutdown}` : ""}`);
    }
  }

  /**
   * A ready guest held back by the warm start: `dinv warm save -- COMMAND`'s command first (what it
   * pulls or builds goes into the state), then the save, then the docker API forward; then ready.
   */
  private async releaseWarm(): Promise<void> {
    const { warm, state, log } = this;
    const forward = async () => {
      const refusal = await warm.addForward(this.qmpSocket);
      if (refusal) state.setHostError("forward", { message: refusal, hint: "is the port in use on the launcher side? set DINV_DOCKER_PORT" });
      return !refusal;
    };
    const before = warm.commandBeforeSave;
    if (before) {
      if (!(await forward())) return;
      const code = await new Promise<number>((resolve) => runCommand(before, state.snapshot(), log, (c) => resolve(c)));
      if (code !== 0) {
        this.commandExit ??= code;
        return this.stop(`the command before the save exited ${code}; nothing saved`);
      }
    }
    const saved = await warm.save({ qmpSocket: this.qmpSocket, dockerVersion: this.session.status?.dockerVersion, log });
    if (warm.info) state.setWarm(warm.info);
    if (saved && warm.saveOnlyRun) {
      this.commandExit ??= saved.ok ? 0 : 1;
      return this.stop("dinv warm save: done");
    }
    if (this.stopper.requested || !(await forward())) return;
    this.announceReady();
  }

  private announceReady(loud = true): void {
    const { session, state, qemu } = this;
    const status = session.status;
    if (!qemu || status?.state.phase !== "ready") return;
    this.apply(this.runState.phase === "holding" ? { type: "released", reason: "dockerd answers" } : { type: "guest", phase: "ready", reason: "dockerd answers" });
    const how = this.warm.info?.start === "warm" ? `${this.accel}, warm start` : this.accel;
    if (loud) this.log.info({ timeline: state.snapshot().timeline, accel: this.accel }, `dinv ready: dockerd ${status.dockerVersion ?? "?"} answers at ${state.snapshot().dockerHost} after ${((Date.now() - qemu.startedAt) / 1000).toFixed(1)} s (${how})`);
    const command = this.options.command;
    if (command?.length && this.commandExit === undefined && !this.commandStarted) {
      this.commandStarted = true;
      runCommand(command, state.snapshot(), this.log, (code, why) => {
        this.commandExit ??= code;
        this.stop(why);
      });
    }
  }

  private stop(reason: string, timeoutSeconds = this.p.config.shutdownTimeoutSeconds): void {
    this.stopper.request(reason, timeoutSeconds);
  }

  private readonly onSignal = (signal: NodeJS.Signals) => this.stop(`received ${signal}`);

  private wireStop(): void {
    this.stopper.onrequested = (reason) => {
      this.warm.cancel();
      this.apply({ type: "stop-requested", reason });
    };
    process.on("SIGINT", this.onSignal);
    process.on("SIGTERM", this.onSignal);
    this.closers.push(() => process.off("SIGINT", this.onSignal), () => process.off("SIGTERM", this.onSignal));
  }

  /** The agent channel, the control API and the docker socket; the VM's QMP event monitor. */
  private async serve(): Promise<void> {
    const { config } = this.p;
    const { state, session } = this;
    const endpoints = await openEndpoints({ config, state, session, tls: this.services.tls, stop: (timeoutSeconds) => this.stop("stop requested by `dinv stop`", timeoutSeconds) });
    this.monitor = new VmMonitor(config, state, session, () => this.stopper.requested, this.log);
    this.closers.push(() => session.close(), () => endpoints.close());
  }

  /** Everything the run opened, closed; the run's end, with its exit code. */
  private async end(code: number, reason: string): Promise<number> {
    if (!isOver(this.runState)) {
      // The end of a run that was never asked to stop (a failed boot, QEMU gone) passes no stop.
      this.apply({ type: "ended", code, reason });
    }
    this.monitor.stop();
    await this.services.stop();
    await rm(this.run(RUN_FILES.bootInitrd), { force: true });
    await this.files.discardUnpacked();
    await this.files.runDir.release();
    for (const close of this.closers) await close();
    return exitCode(this.runState) ?? code;
  }

  /** QEMU has exited: the exit code, from how the run came to its end. */
  private async finish(exit: { exitCode: number | undefined; signal: string | undefined }): Promise<number> {
    const how = await this.stopper.finished();
    const verdict = runVerdict({
      mismatch: this.mismatch,
      commandExit: this.commandExit,
      clean: this.session.status?.state.phase === "stopped",
      requested: this.stopper.requested,
      forced: this.stopper.forced,
      how,
    });
    const stopTimeline = stopTimelineOf(this.stopper.requestedAt, this.guestStopAt, Date.now());
    if (stopTimeline) this.log.info({ stopTimeline }, `stop: ${describeStopTimeline(stopTimeline)}`);
    if (verdict.level === "info") this.log.info(verdict.message);
    else this.log[verdict.level]({ exit }, verdict.message);
    return this.end(verdict.code, verdict.message);
  }
}
