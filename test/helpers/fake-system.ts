// A scripted guest OS for agent tests: records calls, fails where told.

import { GuestStepError, type EarlyStartResult, type GuestSystem, type PrepResult } from "../../guest/system/types.js";
import type { DiskSpec } from "../../shared/protocol/guest-config.js";
import type { PublishedPort } from "../../shared/protocol/published.js";
import type { PortSource } from "../../guest/publish/watcher.js";

/** A scripted dockerd for the publish watcher: set `listed`, then call `event()`. */
export class FakePortSource implements PortSource {
  listed: PublishedPort[] = [];
  lists = 0;
  private onEvent: (() => void) | undefined;
  private endStream: (() => void) | undefined;
  async list(): Promise<PublishedPort[]> {
    this.lists++;
    return this.listed.map((p) => ({ ...p }));
  }
  follow(onEvent: () => void, signal: AbortSignal): Promise<void> {
    this.onEvent = onEvent;
    onEvent();
    return new Promise((resolve) => {
      this.endStream = resolve;
      signal.addEventListener("abort", () => resolve());
    });
  }
  /** dockerd reports an event */
  event(): void {
    this.onEvent?.();
  }
  /** dockerd's event stream ends (dockerd exited) */
  end(): void {
    this.endStream?.();
  }
}

export class FakeSystem implements GuestSystem {
  /** containers a cache generation holds (removed by removeContainers) */
  containers = 0;
  frozen = false;
  /** the cache driver's save, once served */
  cacheDriverSave: (() => Promise<{ ok: boolean; message: string }>) | undefined;
  async freezeDocker(frozen: boolean): Promise<string> {
    this.calls.push(frozen ? "freeze" : "thaw");
    this.frozen = frozen;
    return frozen ? "frozen" : "thawed";
  }
  async removeContainers(): Promise<number> {
    this.calls.push("remove-containers");
    const n = this.containers;
    this.containers = 0;
    return n;
  }
  async serveCacheDriver(save: () => Promise<{ ok: boolean; message: string }>): Promise<void> {
    this.calls.push("cache-driver");
    this.cacheDriverSave = save;
  }
  calls: string[] = [];
  foreignDisk = false;
  dockerdFails = false;
  poweredOff = false;
  /** what the guest init's early start did (undefined: the launcher asked for none) */
  early: EarlyStartResult | undefined;
  /** why adoption fails, if it should */
  adoptRefusal: string | undefined;

  async waitPrep(): Promise<PrepResult> {
    this.calls.push("prep");
    return { startedMs: 3000, endedMs: 4000, detail: "fake prep" };
  }
  async prepareDisk(spec: DiskSpec): Promise<string> {
    this.calls.push(`disk:${spec.serial}`);
    if (this.foreignDisk) throw new GuestStepError(`the ${spec.role} disk holds a xfs filesystem`, "move it aside");
    return "formatted blank disk";
  }
  async mountShare(spec: { tag: string }): Promise<void> {
    this.calls.push(`share:${spec.tag}`);
  }
  async reportSmallFreeBlocks(): Promise<string> {
    this.calls.push("small-free-blocks");
    return "reported";
  }

  async setMtu(mtu: number): Promise<void> {
    this.calls.push(`mtu:${mtu}`);
  }
  async earlyStart(): Promise<EarlyStartResult | undefined> {
    this.calls.push("early");
    return this.early;
  }
  async adoptDockerd(_spec: unknown, pid: number): Promise<{ adopted: true } | { adopted: false; reason: string }> {
    this.calls.push(`adopt:${pid}`);
    return this.adoptRefusal ? { adopted: false, reason: this.adoptRefusal } : { adopted: true };
  }
  async discardDockerd(pid: number, timeoutSeconds: number): Promise<void> {
    this.calls.push(`discard:${pid}:${timeoutSeconds}`);
  }
  /** the configuration of each dockerd start */
  dockerdSpecs: unknown[] = [];
  async startDockerd(spec?: unknown): Promise<void> {
    this.calls.push("dockerd");
    this.dockerdSpecs.push(spec);
  }
  /** dockerd never answers (until the wait is aborted) */
  dockerdHangs = false;
  async waitDockerd(_timeoutMs?: number, signal?: AbortSignal): Promise<{ version: string }> {
    this.calls.push("ping");
    if (this.dockerdFails) throw new GuestStepError("dockerd exited during start-up");
    if (this.dockerdHangs) {
      await new Promise<void>((resolve) => (signal?.aborted ? resolve() : signal?.addEventListener("abort", () => resolve())));
      throw new GuestStepError("the shutdown came before dockerd answered");
    }
    return { version: "20.10.24" };
  }
  /** resolve this to make the fake dockerd "die" */
  killDockerd: (how: string) => void = () => undefined;
  freeBytes = 10 * 2 ** 30;
  totalBytes = 20 * 2 ** 30;
  dockerdExited(): Promise<string> {
    return new Promise((resolve) => (this.killDockerd = resolve));
  }
  async diskSpace(): Promise<{ freeBytes: number; totalBytes: number }> {
    return { freeBytes: this.freeBytes, totalBytes: this.totalBytes };
  }
  async stopDockerd(timeoutSeconds: number): Promise<string> {
    this.calls.push(`stop:${timeoutSeconds}`);
    this.killDockerd("stopped");
    return "dockerd stopped";
  }
  async unmountAll(): Promise<string> {
    this.calls.push("unmount");
    return "1 filesystem(s) unmounted";
  }
  readonly portSource = new FakePortSource();
  relayed: PublishedPort[] = [];
  async relayLoopback(ports: PublishedPort[]): Promise<{ key: string; reason: string }[]> {
    this.relayed = ports.filter((p) => p.scope === "loopback");
    return [];
  }
  renewals: { unixTimeMs: number; sockUid: number; sockGid: number }[] = [];
  renewFails: string | undefined;
  async renew(r: { entropy: Buffer; unixTimeMs: number; sockUid: number; sockGid: number }): Promise<{ bootId: string; detail: string }> {
    this.calls.push("renew");
    if (this.renewFails) throw new Error(this.renewFails);
    this.renewals.push({ unixTimeMs: r.unixTimeMs, sockUid: r.sockUid, sockGid: r.sockGid });
    return { bootId: `renewed-${this.renewals.length}-${r.entropy.subarray(0, 4).toString("hex")}`, detail: "renewed" };
  }

  async powerOff(): Promise<void> {
    this.calls.push("poweroff");
    this.poweredOff = true;
  }
}
