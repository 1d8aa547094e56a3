// The guest agent's protocol logic: hello, config, boot steps, status, shutdown.
// It knows neither its transport nor the OS: both are passed in.

import { within } from "../shared/within.js";
import { PROTOCOL_VERSION } from "../shared/constants.js";
import { CachePart } from "./cache/cache-part.js";
import type { DockerdSpec, GuestConfig } from "../shared/protocol/guest-config.js";
import type { GuestMessage } from "../shared/protocol/guest-messages.js";
import type { HostMessage, Renew } from "../shared/protocol/host-messages.js";
import type { StepName } from "../shared/protocol/status.js";
import type { Transport } from "../shared/transport.js";
import { PublishReporter } from "./publish/reporter.js";
import type { WatcherOptions } from "./publish/watcher.js";
import { StatusTracker, type Clock } from "./status.js";
import { GuestStepError, type GuestSystem, type LogSink } from "./system/types.js";
import { describe, superviseDockerd, watchDisk } from "./watch.js";

export interface AgentOptions {
  bootId: string;
  version: string;
  clock: Clock;
  /** how long dockerd may take to answer /_ping, ms */
  dockerdTimeoutMs: number;
  /** dockerd restarts after a crash before giving up */
  maxDockerdRestarts?: number;
  /** pause before the n-th restart, ms */
  restartDelayMs?: (attempt: number) => number;
  /** how often the docker disk's free space is checked, ms (0: never) */
  diskCheckMs?: number;
  /** timings of the published-ports watcher (tests shorten them) */
  publish?: WatcherOptions;
  /** how long a stopped guest waits for the host's power-off before it ends the VM anyway, ms */
  powerOffWaitMs?: number;
}

export { diskFull } from "./watch.js";

export class Agent {
  readonly status: StatusTracker;
  private transport: Transport<HostMessage, GuestMessage> | undefined;
  private config: GuestConfig | undefined;
  private booting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** the host's power-off arrived (it holds the last state) */
  private allowPowerOff: () => void = () => undefined;
  private readonly powerOffAllowed = new Promise<void>((r) => (this.allowPowerOff = r));
  private initStartedMs: number | undefined;
  /** dockerd is the agent's: started by it, or adopted from the guest init */
  private dockerdOwned = false;
  private readonly publisher: PublishReporter;
  private bootId: string;
  private renewing: Promise<void> | undefined;
  /** set while dockerd is restarted with a restored run's configuration */
  private reconfiguring: Promise<void> | undefined;
  /** the shared cache's freeze and save requests */
  private readonly cache: CachePart;
  /** aborted by the shutdown: the boot's waits (init script, dockerd's answer) end at once */
  private readonly bootAbort = new AbortController();

  constructor(
    private readonly system: GuestSystem,
    private readonly options: AgentOptions,
  ) {
    this.bootId = options.bootId;
    this.status = new StatusTracker(options.bootId, options.clock);
    this.status.onchange = (snapshot) => this.transport?.send(snapshot);
    this.status.start("agent");
    this.publisher = new PublishReporter(system, options.bootId, options.clock, (m) => this.transport?.send(m), (msg) => this.log("warn", msg), options.publish);
    this.cache = new CachePart(system, (m) => (this.transport ? (this.transport.send(m), true) : false), (level, msg) => this.log(level, msg));
  }

  /** Use a (new) connection: say hello and send the current state. */
  attach(transport: Transport<HostMessage, GuestMessage>): void {
    this.transport = transport;
    transport.onmessage = (message) => this.handle(message);
    transport.onreject = (reason) => this.log("warn", `rejected host message: ${reason}`);
    transport.onclose = () => {
      if (this.transport === transport) this.transport = undefined;
    };
    this.greet();
  }

  private greet(renewed?: { ok: boolean; detail: string }): void {
    const transport = this.transport;
    if (!transport) return;
    transport.send({
      type: "hello",
      protocolVersion: PROTOCOL_VERSION,
      bootId: this.bootId,
      agentVersion: this.options.version,
      uptimeMs: this.options.clock.uptimeMs(),
      ...(this.initStartedMs !== undefined ? { initStartedMs: this.initStartedMs } : {}),
      ...(renewed ? { renewed } : {}),
    });
    transport.send(this.status.snapshot());
    transport.send(this.publisher.message());
  }

  /**
   * The VM was restored from a saved state (a warm start): the same RAM runs in every copy, so the
   * random pool, the clock and the ids are made new before the host is told anything. The host
   * sends this first, before it lets the VM run, so it is the first message the restored agent reads.
   */
  private async renew(message: Renew): Promise<void> {
    try {
      const { bootId, detail } = await this.system.renew({
        entropy: Buffer.from(message.entropy, "base64"),
        unixTimeMs: message.unixTimeMs,
        sockUid: message.sockUid,
        sockGid: message.sockGid,
      });
      this.bootId = bootId;
      this.publisher.setBootId(bootId);
      this.status.setBootId(bootId);
      const reconfigured = message.dockerd ? `; ${await this.reconfigure(message.dockerd)}` : "";
      this.greet({ ok: true, detail: `${detail}${reconfigured}` });
    } catch (err) {
      this.greet({ ok: false, detail: describe(err).message });
    }
  }

  /**
   * A restored guest whose run wants another dockerd configuration (bridge, daemon.json keys,
   * registry options): dockerd is restarted with it. The supervisor sees a planned exit, not a crash.
   */
  private async reconfigure(spec: DockerdSpec): Promise<string> {
    const config = this.config;
    if (!config) throw new Error("no configuration to change: this guest was not saved after a boot");
    const started = this.options.clock.uptimeMs();
    let done: () => void = () => undefined;
    this.reconfiguring = new Promise<void>((r) => (done = r));
    try {
      await this.system.stopDockerd(config.dockerd.shutdownTimeoutSeconds);
      config.dockerd = spec;
      await this.system.startDockerd(spec, (level, msg, source) => this.log(level, msg, source));
      const { version } = await this.system.waitDockerd(this.options.dockerdTimeoutMs, this.bootAbort.signal);
      this.status.setDockerVersion(version);
    } finally {
      this.reconfiguring = undefined;
      done();
    }
    return `reconfigured: dockerd restarted with this run's configuration in ${Math.round(this.options.clock.uptimeMs() - started)} ms`;
  }

  /** Start the steps that need no configuration (waiting for the init script). */
  async prepare(): Promise<void> {
    this.status.start("init", 0);
    try {
      const prep = await this.system.waitPrep(this.bootAbort.signal);
      this.initStartedMs = prep.startedMs;
      this.status.start("init", prep.startedMs ?? 0);
      this.status.succeed("init", prep.detail, prep.endedMs);
    } catch (err) {
      this.status.fail("init", describe(err));
    }
  }

  log(level: "debug" | "info" | "warn" | "error", msg: string, source = "agent"): void {
    this.transport?.send({ type: "log", level, msg: msg.slice(0, 4096), source: source.slice(0, 32) });
  }

  private handle(message: HostMessage): void {
    switch (message.type) {
      case "config":
        if (this.config) {
          // A reconnecting host sends its config again: the first one stays in force.
          this.transport?.send(this.status.snapshot());
          return;
        }
        this.config = message.config;
        this.booting = this.boot(message.config);
        return;
      case "status-request":
        this.transport?.send(this.status.snapshot());
        this.transport?.send(this.publisher.message());
        return;
      case "shutdown":
        this.stopping ??= this.shutdown(message.timeoutSeconds);
        return;
      case "freeze":
        void this.cache.freeze(message.id, message.thawAfterMs);
        return;
      case "thaw":
        void this.cache.thaw(message.id);
        return;
      case "power-off":
        this.allowPowerOff();
        return;
      case "cache-save-result":
        this.cache.answered(message.id, { ok: message.ok, message: message.message });
        return;
      case "renew":
        // One restore, one renewal: a second renew in the same life is a host bug, answered as is.
        if (this.renewing) this.greet({ ok: false, detail: "this guest was renewed already" });
        else this.renewing = this.renew(message);
        return;
    }
  }

  private async boot(config: GuestConfig): Promise<void> {
    if (this.status.current.phase !== "booting") return;
    this.status.succeed("agent", `agent ${this.options.version}`);
    this.status.start("config");
    this.status.succeed("config", `${config.disks.length} disk(s), ${config.shares.length} share(s)`);
    const log: LogSink = (level, msg, source) => this.log(level, msg, source);
    if (config.net) {
      // Before dockerd's containers talk: their bridge may already use this MTU (daemon.json).
      await this.system.setMtu(config.net.mtu).catch((err: Error) => this.log("warn", err.message));
    }
    // The guest init may have mounted the docker disk and started dockerd already (early start).
    const early = await this.system.earlyStart();
    if (early?.state === "skipped") this.log("info", `the guest init left dockerd to the agent: ${early.reason}`);
    const started = early?.state === "started" ? early : undefined;
    const ok =
      (await this.step("disks", async () => {
        // Never race the init's script for a disk: without its result, do nothing.
        if (early?.state === "invalid") throw new GuestStepError(`the guest init's early start gave no usable result: ${early.reason}`, "see the console lines in the launcher log; restart dinv");
        const done: string[] = [];
        for (const disk of config.disks) {
          if (started && disk.role === "docker") done.push(`docker: ${started.detail} (by the guest init)`);
          else done.push(`${disk.role}: ${await this.system.prepareDisk(disk)}`);
        }
        const onlyEarly = started && config.disks.length === 1;
        return onlyEarly ? { detail: done.join("; "), startedMs: started.diskStartMs, endedMs: started.diskMs } : done.join("; ");
      })) &&
      (await this.step("mounts", async () => {
        for (const share of config.shares) await this.system.mountShare(share);
        return `${config.shares.length} share(s) mounted`;
      })) &&
      (await this.step("dockerd", async () => {
        if (started) {
          const adoption = await this.system.adoptDockerd(config.dockerd, started.pid, log);
          if (adoption.adopted) {
            this.dockerdOwned = true;
            return { detail: `started by the guest init (pid ${started.pid}), adopted`, startedMs: started.dockerdMs, endedMs: started.dockerdMs };
          }
          this.log("warn", `not adopting the dockerd the guest init started: ${adoption.reason}; starting another`);
          await this.system.discardDockerd(started.pid, config.dockerd.shutdownTimeoutSeconds);
        }
        this.dockerdOwned = true;
        await this.system.startDockerd(config.dockerd, log);
        return "started";
      })) &&
      (await this.step("ping", async () => {
        const { version } = await this.system.waitDockerd(this.options.dockerdTimeoutMs, this.bootAbort.signal);
        this.status.setDockerVersion(version);
        // A cache generation carries the containers of the job that promoted it: this job starts without them.
        const removed = config.cache?.removeContainers ? `; ${await this.system.removeContainers()} container(s) of the cached job removed` : "";
        return `dockerd ${version} answers${removed}`;
      }));
    if (ok && config.cache?.saveRequests) {
      await this.cache.serve();
    }
    if (!ok || this.stopping) return;
    this.status.markRunning();
    this.publisher.start();
    void this.system.reportSmallFreeBlocks().then((d) => this.log("debug", d), (err: Error) => this.log("debug", `free page reporting stays at 2 MiB blocks: ${err.message}`));
    const watch = { system: this.system, status: this.status, log: (level: "debug" | "info" | "warn" | "error", msg: string, source?: string) => this.log(level, msg, source), stopping: () => this.stopping !== undefined, reconfiguring: () => this.reconfiguring };
    void superviseDockerd(config, { ...watch, publisher: this.publisher, options: this.options });
    watchDisk(config, watch, this.options.diskCheckMs ?? 5000);
  }

  /** One boot step; run may report times of its own (work the guest init did before the agent). */
  private async step(name: StepName, run: () => Promise<string | { detail: string; startedMs: number; endedMs: number }>): Promise<boolean> {
    if (this.stopping) return false;
    this.status.start(name);
    try {
      const result = await run();
      if (typeof result === "string") this.status.succeed(name, result);
      else {
        this.status.start(name, result.startedMs);
        this.status.succeed(name, result.detail, result.endedMs);
      }
      return true;
    } catch (err) {
      if (this.stopping) this.status.interrupt(name, describe(err).message);
      else this.status.fail(name, describe(err));
      return false;
    }
  }

  private async shutdown(timeoutSeconds: number): Promise<void> {
    this.status.setPhase({ phase: "stopping" });
    this.publisher.stop();
    // A boot in progress stops waiting (for the init script, for dockerd's answer) and ends at a step
    // boundary, so nothing is half-mounted.
    this.bootAbort.abort();
    await this.booting;
    this.status.start("shutdown");
    try {
      // A dockerd the guest init started that the boot never took over (stopped before the
      // config came): it holds the docker disk, so it goes first.
      if (!this.dockerdOwned) {
        const early = await this.system.earlyStart();
        if (early?.state === "started") await this.system.discardDockerd(early.pid, timeoutSeconds);
      }
      const stopped = await this.system.stopDockerd(timeoutSeconds);
      const unmounted = await this.system.unmountAll();
      this.status.succeed("shutdown", `${stopped}; ${unmounted}`);
      this.status.setPhase({ phase: "stopped" });
    } catch (err) {
      this.status.fail("shutdown", describe(err));
    }
    // The host must see "stopped" before the VM disappears: it answers the last state with power-off
    // (bounded: a host that is gone does not hold the guest up).
    await this.transport?.drain?.();
    await within(this.powerOffAllowed, this.options.powerOffWaitMs ?? 3000);
    await this.system.powerOff();
  }
}
