// One run of `dinv run`, owned by one object: its state (state.ts, whose projections the control
// API, the log and the exit code are), its changing facts, and its reactions to the guest, QEMU,
// signals and the control API. Warm start is a plan with effects it calls; a stop is honoured whenever it arrives.

import { rm } from "node:fs/promises";
import type { StatusSnapshot } from "../../shared/protocol/status.js";
import { GuestSession } from "../guest-link/session.js";
import { describeStopTimeline, stopTimelineOf } from "../guest-link/timeline.js";
import { GuestWatch, publisherFor } from "./guest-watch.js";
import { BootFileError } from "../boot/unpack-cache.js";
import { LauncherState } from "../control/state.js";
import { guestConfigFor } from "../guest-config.js";
import type { GuestConfig } from "../../shared/protocol/guest-config.js";
import type { Logger } from "../log.js";
import { buildQemuArgs, type QemuPlan } from "../qemu/args.js";
import type { QemuProcess } from "../qemu/process.js";
import type { WarmStart } from "../warm/warm-start.js";
import { saveNow, type SaveResult } from "../cache/job.js";
import { bootWithWatchdog, type BootResult } from "./boot.js";
import { runCommand } from "./command.js";
import { openEndpoints } from "./endpoints.js";
import { runVerdict } from "./exit-code.js";
import { EXIT, type LaunchOptions } from "./launch-options.js";
import { changeLine, exitCode, isOver, RunStateHolder } from "./state.js";
import { VmMonitor } from "./monitor.js";
import type { Prepared } from "./prepare.js";
import type { PreparedFiles } from "./prepare-files.js";
import { templateDeps, virtiofsSockets } from "./qemu-plan.js";
import { VmInputs } from "./vm-inputs.js";
import { RUN_FILES, runPath } from "./run-files.js";
import { startSideServices } from "./side-services.js";
import { StopController } from "./stop-controller.js";

type Accel = "kvm" | "tcg";
type Services = Extract<Awaited<ReturnType<typeof startSideServices>>, { ok: true }>["value"];

export class Run {
  private readonly runState: RunStateHolder;
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
  private guest!: GuestWatch;
  /** what QEMU is started with (the side services and the early-start archive change it) */
  private readonly vm: VmInputs;
  // What the run has seen so far.
  private qemu: QemuProcess | undefined;
  private accel: Accel;
  private toldAslr = false;
  private commandExit: number | undefined;
  private commandStarted = false;
  private readonly closers: (() => unknown)[] = [];
  /** whether the run's end promotes the job's docker disk to the cache: a clean stop only */
  private cacheClean = { ok: false, why: "the run did not reach a clean stop" };

  constructor(
    private readonly p: Prepared,
    private readonly files: PreparedFiles,
    private readonly options: LaunchOptions,
  ) {
    this.log = options.log;
    this.qemuBinary = options.qemuBinary ?? "qemu-system-x86_64";
    this.warm = files.warm;
    this.vm = new VmInputs(p);
    this.accel = p.choice.accel === "kvm" ? "kvm" : "tcg";
    this.stopper = new StopController(this.log, options.timings?.helloWaitMs);
    this.state = new LauncherState(p.config);
    this.runState = new RunStateHolder((after) => {
      const line = changeLine(after);
      this.log[line.level]({ phase: after.phase }, line.text);
      this.state.setRun(after);
    });
    this.qmpSocket = runPath(p.config.runDir, RUN_FILES.qmpSocket);
    this.qmpEventsSocket = runPath(p.config.runDir, RUN_FILES.qmpEventsSocket);
  }

  /** QEMU's plan for an accelerator, from the facts of the moment. */
  plan(accel: Accel): QemuPlan {
    return this.vm.plan(accel, this.warm.withholdForward);
  }

  /** The whole run, to its exit code. */
  async start(): Promise<number> {
    const { config } = this.p;
    const started = await startSideServices(config, this.p.shareChoice, { run: (name) => runPath(config.runDir, name), virtiofsSockets: virtiofsSockets(this.p) }, this.log);
    if (!started.ok) {
      await this.files.discardUnpacked();
      await this.files.runDir.release();
      this.log.error(started.error);
      this.runState.apply({ type: "ended", code: EXIT.config, reason: started.error });
      return EXIT.config;
    }
    const services = (this.services = started.value);
    this.vm.shareFs = services.shareFs;
    this.vm.net = services.net;
    if (this.warm.info) this.state.setWarm(this.warm.info);
    const cache = this.files.cache;
    if (cache) {
      this.vm.cacheDisk = { disk: cache.disk, backing: cache.backing };
      this.state.setCache(cache.info);
    }
    const guestConfig = guestConfigFor(config, services.tls, this.vm.shareFs, this.vm.net?.kind === "passt" ? "passt" : "slirp", this.files.mayFormat, cache?.guest);
    // The early-start archive is for a boot: a restore's RAM replaces whatever initramfs QEMU loads.
    if (!this.warm.restoring) await this.vm.makeBootInitrd(guestConfig, this.log);
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
    this.vm.kernel = boot.kernel;
    this.vm.rootImage = boot.rootImage;
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

  /** A restore when one was planned, else (or when it fails) a boot under the watchdog. */
  private async boot(guestConfig: GuestConfig): Promise<BootResult> {
    const { choice } = this.p;
    const timings = this.options.timings;
    if (this.warm.restoring) {
      // Nothing of a restored guest's boot is printed again; its init never runs, so nothing to wait for.
      const restored = await this.warm.restore({
        qemuBinary: this.qemuBinary,
        argsFor: (incoming) => buildQemuArgs(this.p.config, { ...this.plan(this.accel), incoming }),
        onStart: (q) => this.onQemu(q, this.accel, () => false, true),
        qmpSocket: this.qmpSocket,
        session: this.session,
        log: this.log,
      });
      if (this.warm.info) this.state.setWarm(this.warm.info);
      if (restored && "qemu" in restored) return { ok: true, qemu: restored.qemu, accel: this.accel };
      if (restored) return { ok: false, reason: "stopped while restoring", stopped: true };
    }
    await this.vm.makeBootInitrd(guestConfig, this.log);
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
    const { config } = this.p;
    this.qemu = q;
    this.monitor.follow(q, this.qmpEventsSocket);
    this.guest.publisher?.reset();
    const session = this.session;
    this.stopper.attach({ qemu: q, qmpSocket: this.qmpSocket, requestShutdown: (t: number) => session.requestShutdown(t), agentSeen: () => !!session.hello, earlyStart: this.vm.earlyStart, hello: this.guest.helloArrived, guestStopped: this.guest.guestStopped, reachedInitramfs });
    this.accel = a;
    this.state.setAccel(a);
    this.runState.apply({ type: "qemu-started", accel: a, restore, reason: restore ? `QEMU loads the saved VM state (${a})` : `QEMU boots the guest (${a})` });
    if (config.guestAslr === "auto" && a === "tcg" && !this.toldAslr) {
      this.toldAslr = true;
      this.log.info("TCG: the guest's processes run without address-space randomisation (each exec costs ~3x less to translate); DINV_GUEST_ASLR=on keeps it");
    }
  }

  /** The guest's messages, and what the run does about them. */
  private wireGuest(): void {
    const { config } = this.p;
    const { session, log } = this;
    this.guest = new GuestWatch(session, this.state, log, {
      publisher: config.publish.mode === "auto" ? publisherFor(config, this.vm.net, this.qmpSocket, session, log) : undefined,
      stopping: () => this.stopper.requested,
      qemu: () => this.qemu,
      warm: () => this.warm.info,
      onfact: (fact) => (fact.type === "mismatch" ? this.stop("the guest agent speaks another protocol version") : this.onGuestPhase(fact.phase, fact.status, fact.loud)),
    });
    session.oncachesave = (id) => void this.cacheSave().then((r) => session.answerCacheSave(id, r.ok, r.message));
  }

  /** Promote the job's docker disk now (`dinv cache save`, or the job's request through the guest's docker API). */
  private async cacheSave(): Promise<SaveResult> {
    const saved = await saveNow(this.files.cache, { configured: !!this.p.config.cache, phase: this.runState.current.phase, qmpSocket: this.qmpSocket, session: this.session, log: this.log });
    if (this.files.cache) this.state.setCache(this.files.cache.info);
    return saved;
  }

  /** The guest's phase changed: ready (announce, or hold for the warm start), or another phase of the run. */
  private onGuestPhase(phase: StatusSnapshot["state"]["phase"], status: StatusSnapshot, loud: boolean): void {
    if (phase === "ready") {
      if (!this.qemu) return;
      if (!this.warm.withholdForward) return this.announceReady(loud);
      this.runState.apply({ type: "hold", reason: this.warm.restoring ? "the restored guest is ready; adding the docker API forward" : "the guest is ready; saving its state for warm starts first" });
      this.releasing ??= this.releaseWarm();
      return;
    }
    this.runState.apply({ type: "guest", phase, reason: status.state.phase === "degraded" ? status.state.errors.map((e) => e.message).join("; ") : `the guest is ${phase}` });
    if (phase === "degraded" && this.options.command?.length && this.commandExit === undefined) {
      this.commandExit = EXIT.failed;
      this.stop("the guest is degraded; not running the command");
    }
  }

  /** A ready guest held back by the warm start: released (announced), or the run stops as the warm start says. */
  private async releaseWarm(): Promise<void> {
    const out = await this.warm.release({
      qmpSocket: this.qmpSocket,
      dockerVersion: () => this.session.status?.dockerVersion,
      log: this.log,
      stopping: () => this.stopper.requested,
      runCommand: (argv) => new Promise<number>((resolve) => runCommand(argv, this.state.snapshot(), this.log, (c) => resolve(c))),
      template: templateDeps(this.p.config, this.plan(this.accel), this.qemuBinary),
    });
    if (this.warm.info) this.state.setWarm(this.warm.info);
    if (out.kind === "refused") return this.state.setHostError("forward", { message: out.reason, hint: "is the port in use on the launcher side? set DINV_DOCKER_PORT" });
    if (out.kind === "stop") {
      this.commandExit ??= out.exit;
      return this.stop(out.reason);
    }
    if (out.kind === "released") this.announceReady();
  }

  private announceReady(loud = true): void {
    const { session, state, qemu } = this;
    const status = session.status;
    if (!qemu || status?.state.phase !== "ready") return;
    this.runState.apply(this.runState.current.phase === "holding" ? { type: "released", reason: "dockerd answers" } : { type: "guest", phase: "ready", reason: "dockerd answers" });
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

  private wireStop(): void {
    this.stopper.onrequested = (reason) => {
      this.warm.cancel();
      this.runState.apply({ type: "stop-requested", reason });
    };
    this.closers.push(this.stopper.onSignals(this.p.config.shutdownTimeoutSeconds));
  }

  /** The agent channel, the control API and the docker socket; the VM's QMP event monitor. */
  private async serve(): Promise<void> {
    const { config } = this.p;
    const { state, session } = this;
    const endpoints = await openEndpoints({ config, state, session, tls: this.services.tls, stop: (timeoutSeconds) => this.stop("stop requested by `dinv stop`", timeoutSeconds), cacheSave: () => this.cacheSave() });
    this.monitor = new VmMonitor(config, state, session, () => this.stopper.requested, this.log);
    this.closers.push(() => session.close(), () => endpoints.close());
  }

  /** Everything the run opened, closed; the run's end, with its exit code. */
  private async end(code: number, reason: string): Promise<number> {
    if (!isOver(this.runState.current)) {
      // The end of a run that was never asked to stop (a failed boot, QEMU gone) passes no stop.
      this.runState.apply({ type: "ended", code, reason });
    }
    this.monitor.stop();
    // The job's docker disk becomes its key's next generation only after a clean stop (set by finish).
    await this.files.cache?.end(this.cacheClean, this.log);
    await this.services.stop();
    await rm(runPath(this.p.config.runDir, RUN_FILES.bootInitrd), { force: true });
    await this.files.discardUnpacked();
    await this.files.runDir.release();
    for (const close of this.closers) await close();
    return exitCode(this.runState.current) ?? code;
  }

  /** QEMU has exited: the exit code, from how the run came to its end. */
  private async finish(exit: { exitCode: number | undefined; signal: string | undefined }): Promise<number> {
    const how = await this.stopper.finished();
    const verdict = runVerdict({
      mismatch: this.guest.mismatch,
      commandExit: this.commandExit,
      clean: this.session.status?.state.phase === "stopped",
      requested: this.stopper.requested,
      forced: this.stopper.forced,
      how,
    });
    const stopTimeline = stopTimelineOf(this.stopper.requestedAt, this.guest.stopAt, Date.now());
    if (stopTimeline) this.log.info({ stopTimeline }, `stop: ${describeStopTimeline(stopTimeline)}`);
    if (verdict.level === "info") this.log.info(verdict.message);
    else this.log[verdict.level]({ exit }, verdict.message);
    const clean = verdict.code === EXIT.ok && this.session.status?.state.phase === "stopped";
    this.cacheClean = clean ? { ok: true, why: "" } : { ok: false, why: verdict.code === EXIT.ok ? "the guest did not stop cleanly" : `the run ends with exit ${verdict.code}: ${verdict.message}` };
    return this.end(verdict.code, verdict.message);
  }
}
