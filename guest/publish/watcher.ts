// Follows what the guest's containers publish: dockerd's events first (a container started, died,
// was removed, joined or left a network), a periodic full list second, so a missed event can
// neither leave a stale forward nor miss one. Emits the full set whenever it changes.

import type { PublishedPort } from "../../shared/protocol/published.js";
import { samePorts } from "./ports.js";

export interface PortSource {
  /** the published ports of the running containers, now */
  list(): Promise<PublishedPort[]>;
  /**
   * follow dockerd's events, calling onEvent once the stream is open (it may have missed events
   * before) and for each relevant event; settles when the stream ends
   */
  follow(onEvent: () => void, signal: AbortSignal): Promise<void>;
}

export interface WatcherOptions {
  /** events closer together than this are one list, ms */
  debounceMs: number;
  /** full list every, ms */
  reconcileMs: number;
  /** pause before following the events again after the stream ended, ms */
  retryMs: number;
}

export class PublishWatcher {
  private current: PublishedPort[] = [];
  private abort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listing: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly source: PortSource,
    private readonly emit: (ports: PublishedPort[]) => void,
    private readonly options: WatcherOptions = { debounceMs: 20, reconcileMs: 10_000, retryMs: 1000 },
  ) {}

  get ports(): PublishedPort[] {
    return this.current;
  }

  /** Start following; idempotent. */
  start(): void {
    if (this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    void this.followLoop(abort.signal);
    const tick = () => {
      if (abort.signal.aborted) return;
      this.resync();
      this.timer = setTimeout(tick, this.options.reconcileMs);
      this.timer.unref?.();
    };
    this.timer = setTimeout(tick, this.options.reconcileMs);
    this.timer.unref?.();
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    clearTimeout(this.timer);
  }

  /** dockerd is gone: nothing is published until it lists containers again. */
  clear(): void {
    this.set([]);
  }

  /** List now (coalesced: a list in progress is followed by one more). */
  resync(): void {
    if (this.listing) {
      this.again = true;
      return;
    }
    this.listing = (async () => {
      do {
        this.again = false;
        const ports = await this.source.list().catch(() => undefined);
        if (ports && this.abort) this.set(ports);
      } while (this.again && this.abort);
    })().finally(() => (this.listing = undefined));
  }

  private set(ports: PublishedPort[]): void {
    if (samePorts(ports, this.current)) return;
    this.current = ports;
    this.emit(ports);
  }

  private async followLoop(signal: AbortSignal): Promise<void> {
    let debounce: NodeJS.Timeout | undefined;
    const onEvent = () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => this.resync(), this.options.debounceMs);
    };
    while (!signal.aborted) {
      await this.source.follow(onEvent, signal).catch(() => undefined);
      if (signal.aborted) break;
      await new Promise((r) => setTimeout(r, this.options.retryMs).unref?.());
    }
    clearTimeout(debounce);
  }
}
