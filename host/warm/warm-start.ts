// One run's warm start, owned by one object: the plan (restore, save after a cold boot, neither),
// the docker disk made from a saved base, the restore itself with its fall-back to a cold boot, and
// the docker API forward, withheld until a saved state is written or a restored guest is renewed.

import { boundText } from "../guest-link/guest-text.js";
import { existsSync } from "node:fs";
import type { DockerdSpec } from "../../shared/protocol/guest-config.js";
import type { DinvState } from "../../shared/protocol/control.js";
import type { GuestSession } from "../guest-link/session.js";
import type { HostConfig } from "../config/env.js";
import { guestConfigFor } from "../guest-config.js";
import type { Logger } from "../log.js";
import { forwardsOf, hostfwdCommands } from "../net/forwards.js";
import type { Preflight } from "../preflight.js";
import type { QemuProcess } from "../qemu/process.js";
import { hmpCommand } from "../qemu/qmp.js";
import { warmPlanForRun, type WarmPlan } from "./plan.js";
import { restoreVm } from "./restore.js";
import { takeState, type TakenState } from "./take-state.js";
import type { Incoming } from "../qemu/args.js";
import type { QemuFeatures } from "../qemu/version.js";
import { saveWarmState } from "./save.js";

export type WarmInfo = NonNullable<DinvState["warm"]>;

/** Longest warm reason the control API carries, characters (its schema's bound). */
const WARM_REASON_MAX = 1000;

/** What a restore needs of the run: its QMP socket, the guest session's renewal, the log. */
export interface RestoreDeps {
  qmpSocket: string;
  session: GuestSession;
  log: Logger;
  qemuBinary: string;
  argsFor: (incoming: Incoming) => string[];
  onStart: (q: QemuProcess) => void;
}

/** What releasing a held-back guest needs of the run. */
export interface ReleaseDeps {
  qmpSocket: string;
  /** dockerd's version as the guest reports it now */
  dockerVersion: () => string | undefined;
  log: Logger;
  stopping: () => boolean;
  /** run the user's command with DOCKER_HOST set; resolves with its exit code */
  runCommand: (argv: string[]) => Promise<number>;
  template: SaveDeps["template"];
}

/** What the run does next: announce the guest; stop with this exit code; report the forward refused; nothing (a stop came). */
export type ReleaseOutcome = { kind: "released" } | { kind: "stop"; reason: string; exit: number } | { kind: "refused"; reason: string } | { kind: "stopping" };

/** What a save needs of the run. */
export interface SaveDeps {
  qmpSocket: string;
  dockerVersion: string | undefined;
  log: Logger;
  /** a template QEMU's binary, QMP socket and arguments (over a RAM file), for a state every restore maps */
  template: { qemuBinary: string; qmpSocket: string; argsFor: (ramPath: string) => string[] };
}

export class WarmStart {
  /** the docker API's forward is not on QEMU's command line (added once allowed) */
  withholdForward: boolean;
  info: WarmInfo | undefined;
  private forwardAdded = false;
  private readonly abort = new AbortController();
  /** the docker disk is this run's verified copy of the state's base (no further probing needed) */
  dockerDiskMade = false;

  private constructor(
    private plan: WarmPlan,
    private readonly config: HostConfig,
    private readonly dockerDisk: string,
    private readonly saveOnly: { command?: string[] } | undefined,
    private readonly qemu: QemuFeatures,
    /** this run's dockerd configuration (sent to a restored guest whose saved one differs) */
    private readonly dockerd: DockerdSpec,
  ) {
    this.withholdForward = plan.kind === "restore" || plan.save;
  }

  /** the QEMU takes file: migration URIs (8.2 and later); it can also map a saved RAM file */
  private get fileMigration(): boolean {
    return this.qemu.fileMigration;
  }

  /** Decide, and for a restore make the docker disk from the saved base; refuses `dinv warm save` where it cannot save. */
  static async prepare(o: {
    config: HostConfig;
    pre: Preflight;
    accel: "kvm" | "tcg";
    dockerDisk: string;
    /** the cache generation under the docker disk: a state restores only onto the one it was saved on */
    dockerBase?: string;
    log: Logger;
    saveOnly?: { command?: string[] };
  }): Promise<WarmStart | { refused: string }> {
    const { config, pre, log } = o;
    const guest = guestConfigFor(config, undefined, "9p", config.net);
    const plan = await warmPlanForRun({
      config,
      guest,
      accel: o.accel,
      qemu: pre.qemu!,
      ...(pre.tscKhz ? { tscKhz: pre.tscKhz } : {}),
      guestFiles: [pre.guest.kernel, pre.guest.initrd, pre.guest.rootImage],
      dockerDiskExists: existsSync(o.dockerDisk),
      ...(o.dockerBase ? { dockerBase: o.dockerBase } : {}),
      ...(o.saveOnly ? { forceSave: true } : {}),
    });
    if (o.saveOnly && !(plan.kind === "cold" && plan.save)) return { refused: `dinv warm save: cannot save a warm state: ${plan.kind === "cold" ? plan.reason : "a state would be restored"}` };
    const warm = new WarmStart(plan, config, o.dockerDisk, o.saveOnly, pre.qemu!, guest.dockerd);
    if (plan.kind === "restore") {
      const taken = await takeState(plan, config.dockerDir, o.dockerDisk, pre.qemu!);
      if (!taken.ok) warm.fallBack(taken.reason, log);
      else {
        warm.taken = taken;
        warm.dockerDiskMade = true;
      }
    } else if (config.warm.mode === "auto" || o.saveOnly) {
      log.info(`warm start: booting cold: ${plan.reason}${plan.save ? "; a warm state is saved once the guest is ready" : ""}`);
      warm.info = { start: "cold", reason: plan.reason };
    }
    return warm;
  }

  /** what the restore takes of the state: the stream or the mapped files, open, and their digest check */
  private taken: Extract<TakenState, { ok: true }> | undefined;

  get restoring(): boolean {
    return this.plan.kind === "restore";
  }

  /** A stop cancels a save or restore in progress. */
  cancel(): void {
    this.abort.abort();
  }

  /** `dinv warm save -- COMMAND`: the command to run before the save, when there is one. */
  get commandBeforeSave(): string[] | undefined {
    return this.saveOnly?.command?.length ? this.saveOnly.command : undefined;
  }

  /** `dinv warm save`: the run ends once the state is saved. */
  get saveOnlyRun(): boolean {
    return this.saveOnly !== undefined;
  }

  /** A restore with QEMU's arguments for this state; undefined: boot cold (the reason is logged). */
  async restore(h: RestoreDeps): Promise<{ qemu: QemuProcess } | { stopped: true } | undefined> {
    if (this.plan.kind !== "restore") return undefined;
    const plan = this.plan;
    // QEMU reopens the very files that were checked (and are being hashed), by their descriptors' /proc paths.
    const m = this.taken!.mapped;
    const stream = this.taken!.stateFile;
    const restored = await restoreVm({
      qemuBinary: h.qemuBinary,
      args: h.argsFor(m ? { kind: "mapped", ramPath: m.ram.procPath } : { kind: "stream", path: stream!.procPath }),
      source: m ? { kind: "mapped", devicesPath: m.devices.procPath } : { kind: "stream", path: stream!.procPath, fileMigration: this.fileMigration },
      // From here the guest's status is a warm start's (its timeline too).
      onLoaded: (loadMs) => (this.info = { start: "warm", reason: `restoring from ${plan.dir}`, loadMs }),
      verified: this.taken!.verified,
      qmpSocket: h.qmpSocket,
      log: h.log,
      renew: (message) => new Promise((resolve) => {
        h.session.onrenewed = resolve;
        h.session.expectRenewal(message);
      }),
      sockOwner: this.config.dockerSock,
      // Another dockerd configuration: the agent restarts dockerd with this run's (~10-13 s under TCG).
      ...(plan.reconfigure ? { dockerd: this.dockerd, renewTimeoutMs: 300_000 } : {}),
      onStart: h.onStart,
      onConsole: (line) => {
        if (h.session.budget.take(line.length).allowed) h.log.info({ src: "console" }, line);
      },
      signal: this.abort.signal,
    });
    if (restored.ok) {
      const how = plan.reconfigure ? "warm, reconfigured: " : "";
      const ram = m ? "its RAM file mapped, shared" : `its stream read (${this.taken!.streamWhy})`;
      // The detail is the guest's text: bounded, so the reason fits the control API's field.
      this.info = { start: "warm", reason: boundText(`${how}restored from ${plan.dir} (saved ${plan.meta.savedAt}; ${ram}); ${boundText(restored.detail, 300)}`, WARM_REASON_MAX), loadMs: restored.loadMs };
      h.log.info(`warm start: the saved VM was loaded ${restored.loadMs} ms after QEMU started (${m ? "RAM file mapped" : "stream read"}) and renewed in ${restored.renewMs} ms`);
      return { qemu: restored.qemu };
    }
    if (restored.stopped) return { stopped: true };
    h.session.cancelRenewal();
    this.fallBack(restored.reason, h.log);
    return undefined;
  }

  /** The restore cannot happen: a cold boot, on the docker disk made from the base if there is one. */
  private fallBack(why: string, log: Logger): void {
    const reason = boundText(why, WARM_REASON_MAX);
    log.warn(`warm start: booting cold: ${reason}`);
    this.plan = { kind: "cold", shape: this.plan.shape, reason, save: false };
    this.info = { start: "cold", reason };
  }

  /**
   * A ready guest held back: `dinv warm save -- COMMAND`'s command first (what it pulls or builds
   * goes into the state), then the save, then the docker API forward. What the run does next.
   */
  async release(h: ReleaseDeps): Promise<ReleaseOutcome> {
    const before = this.commandBeforeSave;
    if (before) {
      const refused = await this.addForward(h.qmpSocket);
      if (refused) return { kind: "refused", reason: refused };
      const code = await h.runCommand(before);
      if (code !== 0) return { kind: "stop", reason: `the command before the save exited ${code}; nothing saved`, exit: code };
    }
    const saved = await this.save({ qmpSocket: h.qmpSocket, dockerVersion: h.dockerVersion(), log: h.log, template: h.template });
    if (saved && this.saveOnlyRun) return { kind: "stop", reason: "dinv warm save: done", exit: saved.ok ? 0 : 1 };
    if (h.stopping()) return { kind: "stopping" };
    const refused = await this.addForward(h.qmpSocket);
    return refused ? { kind: "refused", reason: refused } : { kind: "released" };
  }

  /**
   * After a cold boot with a save planned: save the ready guest's state, unless a stop came first.
   * What was said about it (saved, where, or why not); undefined when no save was planned.
   */
  async save(h: SaveDeps): Promise<{ ok: boolean; said: string } | undefined> {
    const plan = this.plan;
    if (plan.kind !== "cold" || !plan.save || this.abort.signal.aborted) return undefined;
    const saved = await saveWarmState({
      qmpSocket: h.qmpSocket,
      dockerDisk: this.dockerDisk,
      warmDir: this.config.warm.dir,
      shape: plan.shape,
      fileMigration: this.fileMigration,
      ...(h.dockerVersion ? { dockerVersion: h.dockerVersion } : {}),
      // QEMU 8.2 and later map a RAM file privately (readonly=on,rom=off): the state is written as one too.
      ...(this.fileMigration ? { template: { ...h.template, ramBytes: this.config.memoryBytes, log: h.log } } : {}),
      signal: this.abort.signal,
    });
    const mapped = saved.ok ? (saved.mapped === "mapped" ? "; restores map its RAM file, shared between instances" : `; ${saved.mapped}`) : "";
    const said = saved.ok
      ? `${saved.kept ? "saved" : "already saved by another run"} in ${saved.dir} (${Math.round(saved.stateBytes / 2 ** 20)} MiB state, ${Math.round(saved.diskBytes / 2 ** 20)} MiB disk; the VM paused ${saved.pauseMs} ms${mapped})`
      : `not saved: ${saved.reason}`;
    h.log[saved.ok ? "info" : "warn"](`warm state ${said}`);
    this.info = { ...(this.info ?? { start: "cold", reason: plan.reason }), saved: said };
    return { ok: saved.ok, said };
  }

  /** Add the withheld docker API forward; why not, or undefined. */
  async addForward(qmpSocket: string): Promise<string | undefined> {
    if (this.forwardAdded) return undefined;
    const f = forwardsOf(this.config)[0]!;
    const out = (await hmpCommand(qmpSocket, hostfwdCommands(f).add).catch((err: Error) => err.message)).trim();
    if (out) return `cannot forward the docker API to ${f.bind}:${f.hostPort}: ${out}`;
    this.forwardAdded = true;
    this.withholdForward = false;
    return undefined;
  }
}
