// `dinv run`: configuration, probing, disks, the agent channel, QEMU under a watchdog, and a
// graceful stop on SIGINT/SIGTERM with bounded escalation (agent -> QMP quit -> SIGKILL).

import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { StatusSnapshot } from "../shared/protocol/status.js";
import { GuestSession, type ReceivedHello } from "./agent/session.js";
import { listenAgent } from "./agent/channel.js";
import { bootTimeline } from "./agent/timeline.js";
import { ConfigError, parseEnv, type HostConfig } from "./config/env.js";
import { DiskError, ensureDisk } from "./disk/images.js";
import { guestConfigFor, shareTag } from "./guest-config.js";
import type { Logger } from "./log.js";
import { preflight } from "./preflight.js";
import { chooseAccel } from "./qemu/accel.js";
import { buildQemuArgs, PlanError, type QemuPlan } from "./qemu/args.js";
import { startQemu, type QemuProcess } from "./qemu/process.js";
import { qmpCommand } from "./qemu/qmp.js";

/** Exit codes of `dinv run`. */
export const EXIT = { ok: 0, failed: 1, config: 2, forced: 3 } as const;

export interface LaunchOptions {
  env: Record<string, string | undefined>;
  log: Logger;
  defaultGuestDir: string;
  qemuBinary?: string;
  /** no console output for this long after QEMU starts: kill and retry (guests sometimes hang silently) */
  consoleTimeoutMs?: number;
  /** under KVM, no agent hello for this long: the KVM is unusable, fall back to TCG */
  kvmHelloTimeoutMs?: number;
}

export async function runLauncher(options: LaunchOptions): Promise<number> {
  const { log } = options;
  const qemuBinary = options.qemuBinary ?? "qemu-system-x86_64";
  let config: HostConfig;
  try {
    config = parseEnv(options.env, { guestDir: options.defaultGuestDir });
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error(err.message);
      return EXIT.config;
    }
    throw err;
  }
  const pre = await preflight(config, qemuBinary);
  let choice = chooseAccel(config.accel, pre.kvm);
  if (choice.accel === "error") pre.problems.push(choice.message);
  if (pre.problems.length > 0) {
    log.error(`cannot start:\n${pre.problems.map((p) => `  - ${p}`).join("\n")}`);
    return EXIT.config;
  }
  if (choice.accel === "tcg" && choice.warning) log.warn(`WARNING: ${choice.warning}`);

  const plan = (accel: "kvm" | "tcg"): QemuPlan => ({
    accel,
    ...pre.guest,
    dockerDisk: join(config.dockerDir, "docker.qcow2"),
    ...(config.volume ? { volumeDisk: join(config.volumeDir, "volume.qcow2") } : {}),
    agentSocket: join(config.runDir, "agent.sock"),
    qmpSocket: join(config.runDir, "qmp.sock"),
    pidFile: join(config.runDir, "qemu.pid"),
    shares: config.mounts.map((path, i) => ({ tag: shareTag(i), path })),
    ...(pre.tscKhz ? { tscKhz: pre.tscKhz } : {}),
  });
  try {
    buildQemuArgs(config, plan("tcg")); // reject an impossible plan before touching any file
  } catch (err) {
    if (err instanceof PlanError) {
      log.error(err.message);
      return EXIT.config;
    }
    throw err;
  }

  await mkdir(config.runDir, { recursive: true, mode: 0o750 });
  await mkdir(config.dockerDir, { recursive: true });
  try {
    log.info(await ensureDisk(plan("tcg").dockerDisk, config.dockerSizeBytes, "DINV_DOCKER_SIZE"));
    if (config.volume) {
      await mkdir(config.volumeDir, { recursive: true });
      log.info(await ensureDisk(plan("tcg").volumeDisk!, config.volume.sizeBytes, "DINV_VOLUME_SIZE"));
    }
  } catch (err) {
    if (err instanceof DiskError) {
      log.error(err.message);
      return EXIT.config;
    }
    throw err;
  }

  const session = new GuestSession(guestConfigFor(config), log);
  const server = await listenAgent(plan("tcg").agentSocket, (t) => session.attach(t));
  let qemu: QemuProcess | undefined;
  let accelInUse: "kvm" | "tcg" = choice.accel === "kvm" ? "kvm" : "tcg";
  let hello: ReceivedHello | undefined;
  let lastPhase = "";
  const statusFile = join(config.runDir, "status.json");
  const writeStatus = async (status?: StatusSnapshot) => {
    const body = JSON.stringify({ accel: accelInUse, pid: process.pid, qemuStartedAt: qemu?.startedAt, hello, status, timeline: hello && status && qemu ? bootTimeline(qemu.startedAt, hello.receivedAt, hello, status) : undefined }, null, 2);
    await writeFile(`${statusFile}.tmp`, body);
    await rename(`${statusFile}.tmp`, statusFile);
  };
  session.onhello = (h) => {
    hello = h;
    log.info({ bootId: h.bootId, agent: h.agentVersion, uptimeMs: h.uptimeMs }, "guest agent connected");
  };
  session.onstatus = (status) => {
    void writeStatus(status).catch(() => undefined);
    const phase = status.state.phase;
    if (phase === lastPhase) return;
    lastPhase = phase;
    if (phase === "ready" && qemu && hello) {
      const timeline = bootTimeline(qemu.startedAt, hello.receivedAt, hello, status);
      log.info({ timeline, accel: accelInUse }, `dinv ready: dockerd ${status.dockerVersion ?? "?"} answers at tcp://${config.bindAddr}:${config.dockerPort} after ${((Date.now() - qemu.startedAt) / 1000).toFixed(1)} s (${accelInUse})`);
    } else if (phase === "degraded" && status.state.phase === "degraded") {
      for (const e of status.state.errors) log.error({ step: e.step, hint: e.hint }, `guest degraded: ${e.message}`);
    } else {
      log.info(`guest ${phase}`);
    }
  };

  let stopRequested = false;
  let forced = false;
  const stop = async (reason: string) => {
    const running = qemu;
    if (stopRequested) {
      log.warn(`${reason} again: forcing QEMU to quit`);
      forced = true;
      await qmpCommand(plan(accelInUse).qmpSocket, "quit").catch(() => running?.kill("SIGKILL"));
      return;
    }
    stopRequested = true;
    if (!running) return;
    if (!session.hello) {
      // Nothing is mounted before the agent's hello: quitting QEMU loses nothing.
      log.info(`${reason} during boot: stopping QEMU`);
      await qmpCommand(plan(accelInUse).qmpSocket, "quit").catch(() => running.kill("SIGKILL"));
      return;
    }
    log.info(`${reason}: stopping dockerd in the guest (containers get ${config.shutdownTimeoutSeconds} s)`);
    const budgetMs = (config.shutdownTimeoutSeconds + 30) * 1000;
    const exited = session.requestShutdown(config.shutdownTimeoutSeconds) && (await within(running.exited, budgetMs));
    if (exited) return;
    forced = true;
    log.warn("guest did not power off in time: asking QEMU to quit");
    await qmpCommand(plan(accelInUse).qmpSocket, "quit").catch(() => undefined);
    if (await within(running.exited, 10_000)) return;
    log.warn("QEMU did not quit: killing it");
    running.kill("SIGKILL");
  };
  const onSignal = (signal: NodeJS.Signals) => void stop(`received ${signal}`);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // Boot, with a watchdog on the console and, under KVM, on the agent's hello.
  const consoleTimeoutMs = options.consoleTimeoutMs ?? 60_000;
  const kvmHelloTimeoutMs = options.kvmHelloTimeoutMs ?? 30_000;
  let attempts = 0;
  for (;;) {
    attempts++;
    const args = buildQemuArgs(config, plan(accelInUse));
    log.info({ accel: accelInUse, machine: config.machine, cpus: config.cpus, attempt: attempts }, `starting QEMU ${pre.qemuVersion ?? ""}`.trim());
    log.debug({ args }, "qemu command line");
    qemu = startQemu(qemuBinary, args, (line) => log.info({ src: "console" }, line), (line) => log.warn({ src: "qemu" }, line));
    const verdict = await watch(qemu, session, accelInUse === "kvm" ? kvmHelloTimeoutMs : undefined, consoleTimeoutMs, () => stopRequested);
    if (verdict === "ok" || verdict === "exited") break;
    qemu.kill("SIGKILL");
    await qemu.exited;
    if (verdict === "stalled") {
      log.warn(`WARNING: no agent hello within ${kvmHelloTimeoutMs / 1000} s under KVM: this KVM cannot run the guest; falling back to TCG, expect it to be slow`);
      accelInUse = "tcg";
      choice = { accel: "tcg" };
      continue;
    }
    if (verdict === "silent" && attempts < 3) {
      log.warn(`guest printed nothing within ${consoleTimeoutMs / 1000} s; killed QEMU, retrying (${attempts}/3)`);
      continue;
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    server.close();
    log.error("guest printed nothing in 3 attempts; giving up");
    return EXIT.failed;
  }

  const exit = await qemu.exited;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  session.close();
  server.close();
  const clean = session.status?.state.phase === "stopped";
  await writeStatus(session.status).catch(() => undefined);
  if (stopRequested && !forced && (clean || !session.hello)) {
    log.info(clean ? "guest stopped cleanly; QEMU exited" : "stopped during boot, before anything was mounted");
    return EXIT.ok;
  }
  if (stopRequested) {
    log.warn({ exit }, "stopped, but the guest did not confirm a clean shutdown");
    return EXIT.forced;
  }
  log.error({ exit }, "QEMU exited unexpectedly (guest crash or power-off)");
  return EXIT.failed;
}

type Verdict = "ok" | "silent" | "stalled" | "exited";

/** Resolve once the boot is trustworthy, or say why not. */
async function watch(
  qemu: QemuProcess,
  session: GuestSession,
  helloTimeoutMs: number | undefined,
  consoleTimeoutMs: number,
  stopping: () => boolean,
): Promise<Verdict> {
  const started = Date.now();
  let exited = false;
  void qemu.exited.then(() => (exited = true));
  for (;;) {
    if (exited) return "exited";
    if (stopping()) return "ok";
    const elapsed = Date.now() - started;
    if (session.hello && session.hello.receivedAt >= started) return "ok";
    if (!qemu.sawConsole && elapsed > consoleTimeoutMs) return "silent";
    if (helloTimeoutMs !== undefined && elapsed > helloTimeoutMs) return "stalled";
    if (helloTimeoutMs === undefined && qemu.sawConsole) return "ok";
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const result = await Promise.race([promise.then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}
