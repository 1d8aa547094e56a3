// The real guest system: the init script's result, disks, shares, dockerd, power.

import { readFileSync } from "node:fs";
import { readFile, statfs, writeFile } from "node:fs/promises";
import { GUEST_DOCKER_ROOT } from "../../shared/constants.js";
import type { DiskSpec, DockerdSpec, ShareSpec } from "../../shared/protocol/guest-config.js";
import type { PublishedPort } from "../../shared/protocol/published.js";
import { LoopbackRelays } from "../publish/relay.js";
import { prepareDisk } from "./disk.js";
import { endOtherProcesses } from "./processes.js";
import { dockerPortSource } from "./docker-ports.js";
import { Dockerd, ENGINE_ID_FILE } from "./dockerd.js";
import { waitEarlyStart } from "./early.js";
import { must, run } from "./exec.js";
import { removeAllContainers } from "./containers.js";
import { serveVolumeDriver } from "../cache/volume-driver.js";
import { mountShare, unmountAll } from "./mounts.js";
import { renewGuest } from "./renew.js";
import { loadExeca } from "./exec.js";
import { GUEST_FILES } from "../../shared/guest-paths.js";
import { GuestStepError, type EarlyStartResult, type GuestSystem, type LogSink, type PrepResult } from "./types.js";


/** The page-reporting order knob (absent when the kernel has no balloon driver loaded). */
const PAGE_REPORTING_ORDER = "/sys/module/page_reporting/parameters/page_reporting_order";
/** 2^3 pages: 32 KiB, the smallest free block reported once the guest is ready. */
const SMALL_REPORT_ORDER = 3;

export class LinuxSystem implements GuestSystem {
  private readonly dockerd = new Dockerd();
  private readonly mounted: string[] = [];
  private readonly relays = new LoopbackRelays();
  readonly portSource = dockerPortSource;

  relayLoopback(ports: PublishedPort[]): Promise<{ key: string; reason: string }[]> {
    return this.relays.apply(ports);
  }

  async waitPrep(signal?: AbortSignal): Promise<PrepResult> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (signal?.aborted) throw new GuestStepError("the shutdown came before the guest init script finished");
      const rc = await readFile(GUEST_FILES.prepResult, "utf8").catch(() => undefined);
      if (rc !== undefined) {
        const result = parsePrepResult(rc, await readFile(GUEST_FILES.initStarted, "utf8").catch(() => ""));
        if (result.exitCode !== 0) {
          const log = (await readFile(GUEST_FILES.prepLog, "utf8").catch(() => "")).trim().split("\n").slice(-5).join(" | ");
          throw new GuestStepError(`guest init script failed (exit ${result.exitCode}): ${log}`);
        }
        return result;
      }
      if (Date.now() > deadline) throw new GuestStepError("guest init script did not finish within 120 s");
      // Each poll costs the agent CPU that the init's own work (on one vCPU under TCG) needs more.
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async prepareDisk(spec: DiskSpec): Promise<string> {
    const done = await prepareDisk(spec);
    this.mounted.push(spec.mountPoint);
    return done;
  }

  async mountShare(spec: ShareSpec): Promise<void> {
    await mountShare(spec);
    this.mounted.push(spec.mountPoint);
  }

  async reportSmallFreeBlocks(): Promise<string> {
    // Writable at run time (Linux 5.14+). The boot keeps the 2 MiB default: its many small frees,
    // each reported, made a TCG boot ~25 % slower. After a container's peak, 2 MiB blocks alone
    // left ~17 % of it with QEMU (the free memory is fragmented below 2 MiB); 32 KiB blocks, <1 %.
    await writeFile(PAGE_REPORTING_ORDER, `${SMALL_REPORT_ORDER}\n`);
    return `free page reporting from ${4 << SMALL_REPORT_ORDER} KiB blocks`;
  }

  async setMtu(mtu: number): Promise<void> {
    const result = await run("ip", ["link", "set", "dev", "eth0", "mtu", String(mtu)]);
    if (result.exitCode !== 0) throw new GuestStepError(`cannot set the MTU of eth0 to ${mtu}: ${result.stderr.trim()}`);
  }

  earlyStart(): Promise<EarlyStartResult | undefined> {
    return waitEarlyStart();
  }

  adoptDockerd(spec: DockerdSpec, pid: number, log: LogSink): Promise<{ adopted: true } | { adopted: false; reason: string }> {
    return this.dockerd.adopt(spec, pid, log);
  }

  discardDockerd(pid: number, timeoutSeconds: number): Promise<void> {
    return Dockerd.discard(pid, timeoutSeconds);
  }

  startDockerd(spec: DockerdSpec, log: LogSink): Promise<void> {
    return this.dockerd.start(spec, log);
  }

  waitDockerd(timeoutMs: number, signal?: AbortSignal): Promise<{ version: string }> {
    return this.dockerd.waitReady(timeoutMs, signal);
  }

  dockerdExited(): Promise<string> {
    return this.dockerd.exitedOnce();
  }

  async diskSpace(path: string): Promise<{ freeBytes: number; totalBytes: number }> {
    const s = await statfs(path);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  }

  stopDockerd(timeoutSeconds: number): Promise<string> {
    // While the containers use their grace (the CPU is idle then), once their stop was asked for: execa is
    // loaded for the unmount's commands (~0.5 s of CPU under TCG) and what is dirty is written out, so the
    // unmount after dockerd has less to flush.
    return this.dockerd.stop(timeoutSeconds, () => void loadExeca().then(() => run("sync", [])).catch(() => undefined));
  }

  async unmountAll(): Promise<string> {
    this.relays.closeAll();
    const t0 = performance.now();
    let t1 = t0;
    // The processes left (the init's containerd, whose exit takes a while) end while the disks unmount:
    // dockerd took its own mounts down, so they rarely hold one; one they hold is unmounted after them.
    const ending = endOtherProcesses().then((ended) => ((t1 = performance.now()), ended));
    // Docker's own overlay mounts live under its data root; take them down with it.
    const unmounted = await unmountAll([...new Set([GUEST_DOCKER_ROOT, ...this.mounted])], ending);
    const ended = await ending;
    const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const others = ended.terminated + ended.killed;
    const endedText = others ? `${others} other process(es) ended (${ended.killed} killed) in ${secs(t1 - t0)}` : "";
    return [endedText, `${unmounted} in ${secs(performance.now() - t0)}`].filter(Boolean).join("; ");
  }

  async renew(r: { entropy: Buffer; unixTimeMs: number; sockUid: number; sockGid: number }): Promise<{ bootId: string; detail: string }> {
    const started = performance.now();
    const skewMs = Date.now() - r.unixTimeMs;
    // A state is saved at ready, so dockerd runs; its engine ID is renewed in place (alpine/tools/renew.c).
    const pid = this.dockerd.pid();
    if (!pid) throw new Error("dockerd is not running, so its engine ID cannot be renewed");
    const { bootId, engineIdCopies } = renewGuest(r.entropy, r.unixTimeMs, { pid, engineIdFile: ENGINE_ID_FILE });
    await this.dockerd.setSocketOwner(r.sockUid, r.sockGid);
    const took = Math.round(performance.now() - started);
    return { bootId, detail: `random pool reseeded, clock set (was ${(skewMs / 1000).toFixed(1)} s off), new machine-id, new engine ID (${engineIdCopies} copies in dockerd's memory), docker.sock owner ${r.sockUid}:${r.sockGid}, in ${took} ms` };
  }

  async freezeDocker(frozen: boolean): Promise<string> {
    const started = performance.now();
    // fsfreeze -f flushes the filesystem and blocks new writes until -u: the disk is consistent meanwhile.
    await must("fsfreeze", [frozen ? "-f" : "-u", GUEST_DOCKER_ROOT], 60_000);
    return `${GUEST_DOCKER_ROOT} ${frozen ? "frozen" : "thawed"} in ${Math.round(performance.now() - started)} ms`;
  }

  removeContainers(): Promise<number> {
    return removeAllContainers();
  }

  async serveCacheDriver(save: () => Promise<{ ok: boolean; message: string }>, warn: (msg: string) => void): Promise<void> {
    await serveVolumeDriver(save, warn);
  }

  async powerOff(): Promise<void> {
    // QEMU runs with -no-reboot, so a reboot ends it; microvm has no ACPI power-off path we rely on.
    // busybox's reboot -f syncs first (unless -n): no separate sync exec.
    await run("/usr/bin/busybox", ["reboot", "-f"]);
  }
}

/** "0 4.52" (prep.rc) and "3.31" (init-started) -> exit status and times in ms. Pure. */
export function parsePrepResult(rc: string, initStarted: string): PrepResult & { exitCode: number } {
  const [code, ended] = rc.trim().split(/\s+/);
  const ms = (text: string | undefined) => {
    const seconds = Number(text);
    return text && Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : undefined;
  };
  const startedMs = ms(initStarted.trim());
  const endedMs = ms(ended);
  return {
    exitCode: Number(code ?? -1),
    detail: "modules, cgroups and network up",
    ...(startedMs !== undefined ? { startedMs } : {}),
    ...(endedMs !== undefined ? { endedMs } : {}),
  };
}

/** Guest uptime in ms from /proc/uptime (synchronous: /proc is in memory, and timestamps are taken often). */
export function readUptimeMs(): number {
  try {
    return Math.round(Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000);
  } catch {
    return Math.round(performance.now());
  }
}
