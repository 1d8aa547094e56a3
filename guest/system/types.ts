// What the agent needs from the guest OS. The real one runs commands; unit tests use a fake.

import type { DiskSpec, DockerdSpec, ShareSpec } from "../../shared/protocol/guest-config.js";
import type { PublishedPort } from "../../shared/protocol/published.js";
import type { PortSource } from "../publish/watcher.js";

/** A failure the user can act on: what failed and what to do. */
export class GuestStepError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export type LogSink = (level: "debug" | "info" | "warn" | "error", msg: string, source: string) => void;

export interface PrepResult {
  /** guest uptime when the init script started, ms */
  startedMs?: number;
  /** guest uptime when its prerequisites were done, ms */
  endedMs?: number;
  detail: string;
}

/** What the guest init's early start of dockerd did (alpine/rootfs/usr/lib/dinv/early-dockerd). */
export type EarlyStartResult =
  | { state: "started"; pid: number; diskStartMs: number; diskMs: number; dockerdMs: number; detail: string }
  | { state: "skipped"; reason: string }
  | { state: "invalid"; reason: string };

export interface GuestSystem {
  /** Wait for the init script's prerequisites (modules, cgroups, network). */
  waitPrep(signal?: AbortSignal): Promise<PrepResult>;
  /** Find the disk by serial, format only if blank, mount; returns what was done. */
  prepareDisk(spec: DiskSpec): Promise<string>;
  /** Mount one shared folder. */
  mountShare(spec: ShareSpec): Promise<void>;
  /** Once ready: free page reporting reports free blocks from 32 KiB on instead of 2 MiB; returns what was done. */
  reportSmallFreeBlocks(): Promise<string>;
  /** Set the MTU of the guest's network interface. */
  setMtu(mtu: number): Promise<void>;
  /** The init's early start of dockerd: undefined when the launcher asked for none. */
  earlyStart(): Promise<EarlyStartResult | undefined>;
  /** Take over the dockerd the init started, if it runs with this spec's configuration. */
  adoptDockerd(spec: DockerdSpec, pid: number, log: LogSink): Promise<{ adopted: true } | { adopted: false; reason: string }>;
  /** Stop a dockerd the init started that will not be adopted (its containers get timeoutSeconds). */
  discardDockerd(pid: number, timeoutSeconds: number): Promise<void>;
  /** Write dockerd's configuration and start it. */
  startDockerd(spec: DockerdSpec, log: LogSink): Promise<void>;
  /** Wait until dockerd answers /_ping on its socket; returns its version. */
  waitDockerd(timeoutMs: number, signal?: AbortSignal): Promise<{ version: string }>;
  /** Resolves when the running dockerd exits, with how it exited. */
  dockerdExited(): Promise<string>;
  /** Free and total bytes of the filesystem holding path. */
  diskSpace(path: string): Promise<{ freeBytes: number; totalBytes: number }>;
  /** Stop dockerd (its containers get timeoutSeconds); returns what happened. */
  stopDockerd(timeoutSeconds: number): Promise<string>;
  /** Unmount every disk and share, then sync; returns what happened. */
  unmountAll(): Promise<string>;
  /** dockerd's published ports, and the events that may change them. */
  readonly portSource: PortSource;
  /** Relay the loopback-only published ports to the guest's network address; returns those that failed, with why. */
  relayLoopback(ports: PublishedPort[]): Promise<{ key: string; reason: string }[]>;
  /**
   * After a restore: reseed the kernel's random pool with the host's entropy, set the clock, write
   * a new machine-id and give docker.sock this run's owner; returns a new boot id (read from the
   * reseeded pool) and what was done.
   */
  renew(r: { entropy: Buffer; unixTimeMs: number; sockUid: number; sockGid: number }): Promise<{ bootId: string; detail: string }>;
  /** Freeze (fsfreeze -f) or thaw the docker disk's filesystem, for a consistent snapshot; returns what was done. */
  freezeDocker(frozen: boolean): Promise<string>;
  /** Remove every container (a cache generation's leftovers) with its anonymous volumes; returns how many. */
  removeContainers(): Promise<number>;
  /** Serve the dinv-cache volume driver; each create calls save and answers with its result. */
  serveCacheDriver(save: () => Promise<{ ok: boolean; message: string }>, warn: (msg: string) => void): Promise<void>;
  /** Power the VM off (never returns in a real guest). */
  powerOff(): Promise<void>;
}
