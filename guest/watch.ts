// What the agent watches once dockerd is up: dockerd itself (restarted when it dies, bounded,
// degraded with the reason meanwhile) and the docker disk's free space (degraded while full).

import type { GuestConfig } from "../shared/protocol/guest-config.js";
import type { AgentOptions } from "./agent.js";
import type { PublishReporter } from "./publish/reporter.js";
import type { StatusTracker } from "./status.js";
import { GuestStepError, type GuestSystem } from "./system/types.js";

export interface WatchDeps {
  system: GuestSystem;
  status: StatusTracker;
  log: (level: "debug" | "info" | "warn" | "error", msg: string, source?: string) => void;
  /** a shutdown began: nothing is restarted or reported any more */
  stopping: () => boolean;
  /** set while dockerd is restarted on purpose with another configuration */
  reconfiguring: () => Promise<void> | undefined;
}

/** Free space below which the docker disk counts as full: 64 MiB or 1 %, whichever is larger. */
export function diskFull(freeBytes: number, totalBytes: number): boolean {
  return freeBytes < Math.max(64 * 2 ** 20, totalBytes / 100);
}

/** A failure in words, with its hint when it has one. */
export function describe(err: unknown): { message: string; hint?: string } {
  if (err instanceof GuestStepError) return { message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  return { message: err instanceof Error ? err.message : String(err) };
}

/** Restart dockerd when it dies (bounded), reporting degraded with the reason meanwhile. */
export async function superviseDockerd(config: GuestConfig, d: WatchDeps & { publisher: PublishReporter; options: AgentOptions }): Promise<void> {
  const max = d.options.maxDockerdRestarts ?? 5;
  const delay = d.options.restartDelayMs ?? ((n: number) => Math.min(30_000, 1000 * 2 ** (n - 1)));
  for (let attempt = 1; ; attempt++) {
    const how = await d.system.dockerdExited();
    if (d.stopping()) return;
    const reconfiguring = d.reconfiguring();
    if (reconfiguring) {
      // Stopped on purpose and started again with another configuration: watch the new one.
      await reconfiguring;
      attempt--;
      continue;
    }
    d.publisher.dockerdGone();
    if (attempt > max) {
      d.status.setCondition("dockerd", { step: "dockerd", message: `dockerd exited (${how}) and was restarted ${max} times; giving up`, hint: "see the dockerd lines in the launcher log; restart dinv" });
      return;
    }
    d.status.setCondition("dockerd", { step: "dockerd", message: `dockerd exited (${how}); restarting it (attempt ${attempt} of ${max})`, hint: "see the dockerd lines in the launcher log" });
    d.log("warn", `dockerd exited (${how}); restarting (attempt ${attempt} of ${max})`);
    await new Promise((r) => setTimeout(r, delay(attempt)));
    if (d.stopping()) return;
    try {
      await d.system.startDockerd(config.dockerd, (level, msg, source) => d.log(level, msg, source));
      const { version } = await d.system.waitDockerd(d.options.dockerdTimeoutMs);
      d.status.setDockerVersion(version);
      d.status.setCondition("dockerd", undefined);
    } catch (err) {
      d.log("error", `dockerd restart failed: ${describe(err).message}`);
    }
  }
}

/** Report a full docker disk as degraded (the guest stays up) and clear it once space is freed. */
export function watchDisk(config: GuestConfig, d: WatchDeps, every: number): void {
  if (!every) return;
  const disk = config.disks.find((d) => d.role === "docker");
  if (!disk) return;
  const check = async () => {
    if (d.stopping()) return;
    const space = await d.system.diskSpace(disk.mountPoint).catch(() => undefined);
    if (space && diskFull(space.freeBytes, space.totalBytes)) {
      const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
      d.status.setCondition("disk-full", {
        step: "disks",
        message: `the docker disk is full: ${mib(space.freeBytes)} free of ${mib(space.totalBytes)}`,
        hint: "free space (docker system prune, docker image rm), or raise DINV_DOCKER_SIZE and restart dinv",
      });
    } else if (space) {
      d.status.setCondition("disk-full", undefined);
    }
    setTimeout(check, every).unref?.();
  };
  void check();
}

