// The guest's part in the shared cache, owned by one object: the docker disk's freeze for the
// host's snapshot (with its own thaw should the host never send one), and the saves a job asks for
// through the volume driver, each waiting for the host's answer by its request id.

import { CACHE_VOLUME_DRIVER } from "../../shared/constants.js";
import type { GuestMessage } from "../../shared/protocol/guest-messages.js";
import type { GuestSystem } from "../system/types.js";

type Send = (message: GuestMessage) => boolean;
type Log = (level: "warn" | "error", msg: string) => void;

export class CachePart {
  /** the freeze in force: its id and the timer that thaws it if the host never does */
  private frozen: { id: number; timer: ReturnType<typeof setTimeout> } | undefined;
  /** saves asked for through the volume driver, by request id, awaiting the host's answer */
  private readonly saves = new Map<number, (r: { ok: boolean; message: string }) => void>();
  private nextSave = 1;

  constructor(
    private readonly system: Pick<GuestSystem, "freezeDocker" | "serveCacheDriver">,
    /** the host connection of the moment; false when there is none */
    private readonly send: Send,
    private readonly log: Log,
  ) {}

  /** Serve the dinv-cache volume driver (the run has a cache). */
  async serve(): Promise<void> {
    await this.system.serveCacheDriver(() => this.askSave(), (msg) => this.log("warn", msg)).catch((err: Error) => this.log("warn", `the ${CACHE_VOLUME_DRIVER} volume driver is not served: ${err.message}`));
  }

  /** Freeze the docker disk for the host's snapshot; thawed by the host, or by the timer if it never comes. */
  async freeze(id: number, thawAfterMs: number): Promise<void> {
    if (this.frozen) return void this.send({ type: "freeze-result", id, ok: false, detail: "the docker disk is frozen already" });
    try {
      const detail = await this.system.freezeDocker(true);
      this.frozen = { id, timer: setTimeout(() => void this.thaw(id, "the host did not thaw in time"), thawAfterMs) };
      this.send({ type: "freeze-result", id, ok: true, detail });
    } catch (err) {
      this.send({ type: "freeze-result", id, ok: false, detail: (err as Error).message.slice(0, 1000) });
    }
  }

  async thaw(id: number, why?: string): Promise<void> {
    if (this.frozen?.id !== id) return;
    clearTimeout(this.frozen.timer);
    this.frozen = undefined;
    await this.system.freezeDocker(false).then(
      (detail) => why && this.log("warn", `${detail}: ${why}`),
      (err: Error) => this.log("error", `cannot thaw the docker disk: ${err.message}`),
    );
  }

  /** The host's answer to a save request. */
  answered(id: number, result: { ok: boolean; message: string }): void {
    const pending = this.saves.get(id);
    this.saves.delete(id);
    pending?.(result);
  }

  /** A job asked for a save through the volume driver: the host promotes and answers. */
  private askSave(): Promise<{ ok: boolean; message: string }> {
    const id = this.nextSave++;
    return new Promise((resolve) => {
      this.saves.set(id, resolve);
      if (!this.send({ type: "cache-save-request", id })) this.answered(id, { ok: false, message: "the host is not connected" });
    });
  }
}
