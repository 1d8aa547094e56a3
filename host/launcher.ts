// `dinv run`: configuration, probing, disks, the agent channel and the control API, QEMU under
// watchdogs, and a graceful stop on SIGINT/SIGTERM/`dinv stop` with bounded escalation.

import { chmod, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { listenAgent } from "./agent/channel.js";
import { bootInitrd } from "./boot/initrd.js";
import { cachedVmlinux, KernelError } from "./boot/vmlinux.js";
import { existsSync } from "node:fs";
import { GuestSession } from "./agent/session.js";
import { bootTimeline, warmTimeline } from "./agent/timeline.js";
import { LauncherState } from "./control/state.js";
import { startControlServer } from "./control/server.js";
import { DiskError, ensureDisk } from "./disk/images.js";
import { guestConfigFor, shareTag } from "./guest-config.js";
import type { Logger } from "./log.js";
import { buildQemuArgs, PlanError, type QemuPlan } from "./qemu/args.js";
import type { QemuProcess } from "./qemu/process.js";
import { pingDocker, type DockerEndpoint } from "./proxy/docker-endpoint.js";
import { serveDockerSocket } from "./proxy/docker-socket.js";
import { bootWithWatchdog } from "./vm/boot.js";
import { claimRunDir, RunDirBusy } from "./vm/run-dir.js";
import { RUN_FILES, virtiofsSocketName } from "./vm/run-files.js";
import { startSideServices } from "./vm/side-services.js";
import { publishPolicy } from "./publish/policy.js";
import { reachableAddress } from "./net/forwards.js";
import { AutoPublisher } from "./publish/publisher.js";
import { slirpBackend } from "./publish/slirp.js";
import { StopController } from "./vm/stop-controller.js";
import { runCommand } from "./vm/command.js";
import { prepareLaunch } from "./vm/prepare.js";
import { VmMonitor } from "./vm/monitor.js";
import { PROTOCOL_VERSION } from "../shared/constants.js";
import { WarmStart } from "./warm/warm-start.js";

/** Exit codes of `dinv run`. */
export const EXIT = { ok: 0, failed: 1, config: 2, forced: 3 } as const;

export interface LaunchOptions {
  env: Record<string, string | undefined>;
  log: Logger;
  defaultGuestDir: string;
  qemuBinary?: string;
  /** run this once dockerd is ready, then stop; its exit code becomes the launcher's */
  command?: string[];
  /** the boot watchdog's and the stop's bounds, ms (tests shorten them) */
  timings?: { consoleTimeoutMs?: number; kvmHelloTimeoutMs?: number; helloWaitMs?: number };
  /** called right before the first QEMU start (tests use it to act in that window) */
  beforeBoot?: () => Promise<void>;
  /** `dinv warm save`: boot cold on a fresh docker disk, save the warm state, stop */
  warmSaveOnly?: boolean;
}

export async function runLauncher(options: LaunchOptions): Promise<number> {
  const { log } = options;
  const qemuBinary = options.qemuBinary ?? "qemu-system-x86_64";
  const prepared = await prepareLaunch(options.env, options.defaultGuestDir, qemuBinary, log);
  if ("refused" in prepared) {
    log.error(prepared.refused);
    return EXIT.config;
  }
  const { config, pre, choice, shareChoice } = prepared;
  let shareFs: "9p" | "virtiofs" = shareChoice.fs === "virtiofs" ? "virtiofs" : "9p";
  let net: QemuPlan["net"] = { kind: "slirp" };

  const run = (name: string) => join(config.runDir, name);
  let initrd = pre.guest.initrd;
  let kernel = pre.guest.kernel;
  const virtiofsSockets = config.mounts.map((_, i) => run(virtiofsSocketName(i)));
  const plan = (accel: "kvm" | "tcg"): QemuPlan => ({
    accel,
    qemu: pre.qemu!,
    rootImage: pre.guest.rootImage,
    kernel,
    initrd,
    dockerDisk: join(config.dockerDir, "docker.qcow2"),
    ...(config.volume ? { volumeDisk: join(config.volumeDir, "volume.qcow2") } : {}),
    agentSocket: run(RUN_FILES.agentSocket),
    qmpSocket: run(RUN_FILES.qmpSocket),
    qmpEventsSocket: run(RUN_FILES.qmpEventsSocket),
    pidFile: run(RUN_FILES.qemuPid),
    shares: config.mounts.map((path, i) => ({ tag: shareTag(i), path })),
    shareFs: shareFs === "virtiofs" ? { kind: "virtiofs", sockets: virtiofsSockets } : { kind: "9p" },
    net,
    ...(pre.tscKhz ? { tscKhz: pre.tscKhz } : {}),
    ...(warm?.withholdForward ? { withholdDockerForward: true } : {}),
  });
  let warm: WarmStart | undefined;
  try {
    buildQemuArgs(config, plan("tcg")); // reject an impossible plan before touching any file
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    log.error(err.message);
    return EXIT.config;
  }

  const mayFormat = { docker: false, volume: false };
  // Sockets, pid files, disk images and keys get owner-only modes unless set explicitly (the
  // control socket 0660, the client key for its group).
  process.umask(0o077);
  // Group-searchable, so DINV_CONTROL_GID reaches control.sock; only a directory created here.
  if (await mkdir(config.runDir, { recursive: true })) await chmod(config.runDir, 0o750);
  let runDir: { release: () => Promise<void> };
  try {
    runDir = await claimRunDir(config.runDir, log);
  } catch (err) {
    if (!(err instanceof RunDirBusy)) throw err;
    log.error(err.message);
    return EXIT.config;
  }
  // The kernel's extraction (~0.3-0.8 s) runs while the disks, side services and sockets are prepared;
  // with a warm-start directory it is done once and kept there.
  const kernelCache = config.warm.mode === "auto" && existsSync(config.warm.dir) ? config.warm.dir : undefined;
  let extractedKernel = pre.guest.kernel;
  const extracted = pre.guest.kernelCompressed
    ? cachedVmlinux(pre.guest.kernel, run(RUN_FILES.vmlinux), kernelCache).then(
        (path) => {
          extractedKernel = path;
          return undefined;
        },
        (err: unknown) => err,
      )
    : Promise.resolve(undefined);
  // A warm start: restore a saved VM when one of this shape exists and this run has no docker disk yet.
  const dockerDisk = plan("tcg").dockerDisk;
  const warmPrepared = await WarmStart.prepare({ config, pre, accel: choice.accel === "kvm" ? "kvm" : "tcg", dockerDisk, log, ...(options.warmSaveOnly ? { saveOnly: { ...(options.command?.length ? { command: options.command } : {}) } } : {}) });
  if ("refused" in warmPrepared) {
    await extracted;
    await runDir.release();
    log.error(warmPrepared.refused);
    return EXIT.config;
  }
  warm = warmPrepared;
  const warmStart = warm;
  try {
    await mkdir(config.dockerDir, { recursive: true });
    // A disk made from a saved base was checked against its digest just now: no qemu-img probes.
    const docker = warmStart.dockerDiskMade
      ? { level: "info" as const, message: `made ${dockerDisk} from the saved state's docker disk`, mayFormat: false }
      : await ensureDisk(plan("tcg").dockerDisk, config.dockerSizeBytes, "DINV_DOCKER_SIZE");
    log[docker.level](docker.message);
    mayFormat.docker = docker.mayFormat;
    if (config.volume) {
      await mkdir(config.volumeDir, { recursive: true });
      const volume = await ensureDisk(plan("tcg").volumeDisk!, config.volume.sizeBytes, "DINV_VOLUME_SIZE");
      log[volume.level](volume.message);
      mayFormat.volume = volume.mayFormat;
    }
  } catch (err) {
    await extracted;
    await runDir.release();
    if (!(err instanceof DiskError)) throw err;
    log.error(err.message);
    return EXIT.config;
  }

  const services = await startSideServices(config, shareChoice, { run, virtiofsSockets }, log);
  if (typeof services === "string") {
    await extracted;
    await runDir.release();
    log.error(services);
    return EXIT.config;
  }
  const { tls } = services;
  shareFs = services.shareFs;
  net = services.net;

  const state = new LauncherState(config);
  const guestConfig = guestConfigFor(config, tls, shareFs, net?.kind === "passt" ? "passt" : "slirp", mayFormat);
  // The early-start archive is for a boot: a restore's RAM replaces whatever initramfs QEMU loads.
  let initrdMade = false;
  const makeBootInitrd = async () => {
    initrdMade = true;
    initrd = await bootInitrd(pre.guest.initrd, config.runDir, guestConfig, config.earlyStart, log);
  };
  if (!warmStart.restoring) await makeBootInitrd();
  const session = new GuestSession(guestConfig, log);
  let qemu: QemuProcess | undefined;
  let accel: "kvm" | "tcg" = choice.accel === "kvm" ? "kvm" : "tcg";
  let lastPhase = "";
  const publisher = config.publish.mode === "auto"
    ? new AutoPublisher(publishPolicy(config), net?.kind === "passt"
      ? { unavailable: "passt cannot add forwards while it runs: list the port in DINV_TCP_PORTS / DINV_UDP_PORTS, or use DINV_NET=slirp" }
      : slirpBackend(plan("tcg").qmpSocket), log)
    : undefined;
  if (publisher) {
    publisher.onchange = (s) => state.setPublished(s);
    session.onpublished = (ports) => {
      if (!stopper.requested) publisher.offer(ports);
    };
  }
  session.onmismatch = (guestVersion) => {
    state.setHostError("protocol", {
      message: `the guest agent speaks protocol version ${guestVersion}, this launcher ${PROTOCOL_VERSION}: the guest image and the launcher come from different builds`,
      hint: "rebuild both (npm run build), or use the guest files of this launcher's image",
    });
    mismatch = true;
    // No agent of ours will come: the stop goes on to QEMU at once.
    markHello();
    stop("the guest agent speaks another protocol version");
  };
  session.onhello = (h) => {
    markHello();
    log.info({ bootId: h.bootId, agent: h.agentVersion, uptimeMs: h.uptimeMs }, "guest agent connected");
  };
  session.ondisconnect = () => {
    // Only a guest that said hello can be missed (not a QEMU a failed restore ended).
    if (!stopper.requested && session.hello) state.setHostError("agent", { message: "the guest agent disconnected", hint: "it reconnects by itself; if not, see the console lines in the log" });
  };
  let markHello: () => void = () => undefined;
  const helloArrived = new Promise<void>((r) => (markHello = r));
  let markGuestStopped: () => void = () => undefined;
  const guestStopped = new Promise<void>((r) => (markGuestStopped = r));
  session.onstatus = (status) => {
    if (status.state.phase === "stopped") markGuestStopped();
    state.setHostError("agent", undefined);
    const timeline = !qemu || !session.hello
      ? undefined
      : warmStart.info?.start === "warm"
        ? warmTimeline(qemu.startedAt, warmStart.info.loadMs ?? 0, session.hello.receivedAt, status.state.phase === "ready" ? Date.now() : undefined)
        : bootTimeline(qemu.startedAt, session.hello.receivedAt, session.hello, status);
    state.setGuest(status, timeline);
    const phase = status.state.phase;
    if (phase === lastPhase) return;
    lastPhase = phase;
    // A guest flipping its phase causes log lines: they spend its byte budget too (never the actions).
    const loud = session.budget.take(256).allowed;
    if (phase === "ready" && qemu) {
      if (warmStart.withholdForward) warmStart.ready();
      else announceReady(loud);
    } else if (status.state.phase === "degraded") {
      if (loud) for (const e of status.state.errors) if (session.budget.take(e.message.length).allowed) log.error({ step: e.step, hint: e.hint }, `guest degraded: ${e.message}`);
      if (options.command?.length && commandExit === undefined) {
        commandExit = EXIT.failed;
        stop("the guest is degraded; not running the command");
      }
    } else {
      const shutdown = phase === "stopped" ? status.steps.find((s) => s.name === "shutdown")?.detail : undefined;
      if (loud) log.info(`guest ${phase}${shutdown ? `: ${shutdown}` : ""}`);
    }
  };

  const announceReady = (loud = true) => {
    const status = session.status;
    if (!qemu || status?.state.phase !== "ready") return;
    const how = warmStart.info?.start === "warm" ? `${accel}, warm start` : accel;
    if (loud) log.info({ timeline: state.snapshot().timeline, accel }, `dinv ready: dockerd ${status.dockerVersion ?? "?"} answers at ${state.snapshot().dockerHost} after ${((Date.now() - qemu.startedAt) / 1000).toFixed(1)} s (${how})`);
    if (options.command?.length && commandExit === undefined) startCommand(options.command);
  };
  let commandExit: number | undefined;
  let commandStarted = false;
  const startCommand = (argv: string[]) => {
    if (commandStarted) return;
    commandStarted = true;
    runCommand(argv, state.snapshot(), log, (code, why) => {
      commandExit ??= code;
      stop(why);
    });
  };

  let mismatch = false;
  const stopper = new StopController(log, options.timings?.helloWaitMs);
  stopper.onrequested = () => {
    warmStart.cancel();
    state.setStopping();
  };
  warmStart.attach({
    state,
    session,
    log,
    qmpSocket: () => plan(accel).qmpSocket,
    stopping: () => stopper.requested,
    stop: (why) => stop(why),
    runCommand: (argv) => new Promise((resolve) => runCommand(argv, state.snapshot(), log, (code) => resolve(code))),
    setExit: (code) => (commandExit ??= code),
    announce: () => announceReady(),
  });
  const stop = (reason: string, timeoutSeconds = config.shutdownTimeoutSeconds) => stopper.request(reason, timeoutSeconds);
  const onSignal = (signal: NodeJS.Signals) => stop(`received ${signal}`);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const dockerTarget: DockerEndpoint = {
    host: reachableAddress(config.bindAddr),
    port: config.dockerPort,
    ...(tls ? { tls: { caPem: tls.caPem, certPem: tls.client.certPem, keyPem: tls.client.keyPem } } : {}),
  };
  const agentServer = await listenAgent(run(RUN_FILES.agentSocket), (t) => session.attach(t));
  const control = await startControlServer(run(RUN_FILES.controlSocket), state, {
    stop: (timeoutSeconds) => stop("stop requested by `dinv stop`", timeoutSeconds),
    health: () => (state.phase === "ready" ? pingDocker(dockerTarget) : Promise.resolve({ healthy: false, reason: `dinv is ${state.phase}` })),
  }, {
    ...(config.control.gid !== undefined ? { gid: config.control.gid } : {}),
    ...(config.control.tcpPort !== undefined ? { tcpPort: config.control.tcpPort, tokenFile: run(RUN_FILES.controlToken) } : {}),
  });
  const dockerSock = config.dockerSockPath ? await serveDockerSocket(config.dockerSockPath, dockerTarget, config.dockerSock) : undefined;
  const monitor = new VmMonitor(config, state, session, () => stopper.requested, log);
  const cleanup = async () => {
    monitor.stop();
    await services.stop();
    await rm(run(RUN_FILES.bootInitrd), { force: true });
    await rm(run(RUN_FILES.vmlinux), { force: true });
    await runDir.release();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    session.close();
    agentServer.close();
    dockerSock?.close();
    await control.close();
  };

  let toldAslr = false;
  const extractError = await extracted;
  if (extractError) {
    state.setStopped();
    await cleanup();
    if (!(extractError instanceof KernelError)) throw extractError;
    log.error(extractError.message);
    return EXIT.failed;
  }
  if (pre.guest.kernelCompressed) kernel = extractedKernel;
  await options.beforeBoot?.();
  const onStart = (q: QemuProcess, a: "kvm" | "tcg", reachedInitramfs: () => boolean) => {
    qemu = q;
    monitor.follow(q, plan(a).qmpEventsSocket!);
    publisher?.reset();
    stopper.attach({ qemu: q, qmpSocket: plan(a).qmpSocket, requestShutdown: (t: number) => session.requestShutdown(t), agentSeen: () => !!session.hello, earlyStart: initrd !== pre.guest.initrd, hello: helloArrived, guestStopped, reachedInitramfs });
    accel = a;
    state.setAccel(a);
    if (config.guestAslr === "auto" && a === "tcg" && !toldAslr) {
      toldAslr = true;
      log.info("TCG: the guest's processes run without address-space randomisation (each exec costs ~3x less to translate); DINV_GUEST_ASLR=on keeps it");
    }
  };
  let booted: Awaited<ReturnType<typeof bootWithWatchdog>> | undefined;
  if (warmStart.restoring) {
    // Nothing of a restored guest's boot is printed again; its init never runs, so nothing to wait for.
    const restored = await warmStart.restore(qemuBinary, (statePath) => buildQemuArgs(config, { ...plan(accel), incoming: statePath }), (q) => onStart(q, accel, () => false));
    if (restored && "qemu" in restored) booted = { ok: true, qemu: restored.qemu, accel };
    else if (restored) booted = { ok: false, reason: "stopped while restoring", stopped: true };
  }
  if (!booted && !initrdMade) await makeBootInitrd();
  booted ??= await bootWithWatchdog({
    qemuBinary,
    argsFor: (a) => buildQemuArgs(config, plan(a)),
    beforeStart: () => services.beforeStart(),
    accel,
    // Any hello, even one of another protocol version, shows the guest runs under this accelerator.
    helloSince: (since) => session.lastHelloAt >= since,
    stopping: () => stopper.requested,
    log,
    consoleBudget: (bytes) => session.budget.take(bytes),
    consoleTimeoutMs: options.timings?.consoleTimeoutMs ?? 60_000,
    // DINV_ACCEL=kvm was asked for: never fall back to TCG behind the user's back.
    ...(choice.accel === "kvm" && choice.verifyBoot ? { kvmHelloTimeoutMs: options.timings?.kvmHelloTimeoutMs ?? 30_000 } : {}),
    attempts: 3,
    onStart,
  });
  if (!booted.ok) {
    state.setStopped();
    await cleanup();
    // A stop that came before any QEMU ran: nothing was started, nothing can be lost.
    if (booted.stopped) {
      log.info("stopped before the VM started");
      return EXIT.ok;
    }
    log.error(`${booted.reason}; giving up`);
    return EXIT.failed;
  }

  const exit = await booted.qemu.exited;
  if (mismatch) {
    await stopper.finished();
    state.setStopped();
    await cleanup();
    log.error("stopped: the guest agent and the launcher speak different protocol versions (see above)");
    return EXIT.failed;
  }
  const how = await stopper.finished();
  const clean = session.status?.state.phase === "stopped";
  state.setStopped();
  await cleanup();
  if (commandExit !== undefined) {
    log.info(`exiting with the command's exit code ${commandExit}${clean ? "" : " (the guest did not confirm a clean shutdown)"}`);
    return commandExit === 0 && !clean ? EXIT.forced : commandExit;
  }
  if (stopper.requested && !stopper.forced && how === "clean") {
    log.info(clean ? "guest stopped cleanly; QEMU exited" : "stopped during boot, before anything was mounted");
    return EXIT.ok;
  }
  if (stopper.requested) {
    log.warn({ exit }, "stopped, but the guest did not confirm a clean shutdown");
    return EXIT.forced;
  }
  log.error({ exit }, "QEMU exited unexpectedly (guest crash or power-off)");
  return EXIT.failed;
}
