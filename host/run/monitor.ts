// Watching a running VM from the launcher's side: the agent's heartbeat (a guest that stops
// answering is reported within AGENT_SILENCE_MS) and QEMU's events (a full disk pauses the VM: it
// is reported as such and resumed when there is room again).

import type { GuestSession } from "../guest-link/session.js";
import type { HostConfig } from "../config/env.js";
import type { LauncherState } from "../control/state.js";
import type { Logger } from "../log.js";
import { QmpEventStream } from "../qemu/events.js";
import type { QemuProcess } from "../qemu/process.js";
import { DiskSpaceWatch, freeBytesAt } from "./disk-space.js";

/** How often the launcher asks the agent for its status, and how long a silence it tolerates, ms. */
export const HEARTBEAT_MS = 5000;
export const AGENT_SILENCE_MS = 20_000;

export class VmMonitor {
  private events: QmpEventStream | undefined;
  private readonly abort = new AbortController();
  private readonly diskWatch: DiskSpaceWatch;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    config: Pick<HostConfig, "dockerDir" | "volumeDir" | "volume">,
    private readonly state: LauncherState,
    private readonly session: GuestSession,
    private readonly stopping: () => boolean,
    private readonly log: Logger,
  ) {
    this.diskWatch = new DiskSpaceWatch({
      report: (error) => state.setHostError("host-disk", error),
      resume: () => this.events?.send("cont"),
      freeBytes: async () => Math.min(await freeBytesAt(config.dockerDir), config.volume ? await freeBytesAt(config.volumeDir) : Infinity),
    }, log);
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
  }

  /** A QEMU started: follow its events monitor until it exits. */
  follow(qemu: QemuProcess, eventsSocket: string): void {
    this.events?.close();
    const stream = new QmpEventStream();
    this.events = stream;
    stream.onevent = (e) => this.diskWatch.onEvent(e);
    void stream.connect(eventsSocket, this.abort.signal).catch((err: Error) => this.log.debug(`no QMP events: ${err.message}`));
    void qemu.exited.then(() => stream.close());
  }

  stop(): void {
    clearInterval(this.heartbeat);
    this.diskWatch.stop();
    this.abort.abort();
    this.events?.close();
  }

  private beat(): void {
    // A VM paused for a full disk is silent through no fault of the agent's.
    if (this.stopping() || !this.session.hello || this.diskWatch.paused) return;
    this.session.requestStatus();
    const silentMs = Date.now() - this.session.lastHeardAt;
    this.state.setHostError("agent-silent", silentMs > AGENT_SILENCE_MS
      ? { message: `the guest agent has not answered for ${Math.round(silentMs / 1000)} s`, hint: "the guest may be overloaded or hung; see the console lines in the log, or restart dinv" }
      : undefined);
  }
}
