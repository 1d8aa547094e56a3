// What the agent tells the launcher about published ports: the watcher's full set, after the
// loopback relays are in place, numbered per boot. Re-sent whole on request, so a launcher that
// reconnects or missed a message catches up.

import { publishedKey, type Published, type PublishedPort } from "../../shared/protocol/published.js";
import type { Clock } from "../status.js";
import type { GuestSystem } from "../system/types.js";
import { PublishWatcher, type WatcherOptions } from "./watcher.js";

export class PublishReporter {
  private seq = 0;
  private ports: PublishedPort[] = [];
  private readonly watcher: PublishWatcher;
  private applying: Promise<void> = Promise.resolve();

  constructor(
    private readonly system: GuestSystem,
    private bootId: string,
    private readonly clock: Clock,
    private readonly send: (message: Published) => void,
    private readonly warn: (msg: string) => void,
    options?: WatcherOptions,
  ) {
    this.watcher = new PublishWatcher(system.portSource, (ports) => this.changed(ports), options);
  }

  /** dockerd answers: follow its containers. */
  start(): void {
    this.watcher.start();
  }

  /** dockerd exited: nothing is published (its containers are gone) until it is back. */
  dockerdGone(): void {
    this.watcher.clear();
  }

  stop(): void {
    this.watcher.stop();
  }

  /** The current full set, as a message. */
  /** A restored guest reports under its new boot id. */
  setBootId(bootId: string): void {
    this.bootId = bootId;
  }

  message(): Published {
    return { type: "published", seq: this.seq, at: this.clock.now(), bootId: this.bootId, ports: this.ports };
  }

  private changed(ports: PublishedPort[]): void {
    // In order: a set applied late must not overwrite a newer one.
    this.applying = this.applying.then(async () => {
      const failed = await this.system.relayLoopback(ports).catch((err: Error) => ports.filter((p) => p.scope === "loopback").map((p) => ({ key: publishedKey(p), reason: err.message })));
      for (const f of failed) this.warn(`cannot relay the loopback-only port ${f.key}: ${f.reason}`);
      const bad = new Set(failed.map((f) => f.key));
      this.ports = ports.filter((p) => !bad.has(publishedKey(p)));
      this.seq++;
      this.send(this.message());
    });
  }
}
