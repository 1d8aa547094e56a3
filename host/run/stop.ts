// Stopping the VM with bounded escalation: agent shutdown -> QMP quit -> SIGKILL.

import type { Logger } from "../log.js";
import type { QemuProcess } from "../qemu/process.js";
import { qmpCommand } from "../qemu/qmp.js";

export interface StopDeps {
  qemu: QemuProcess;
  qmpSocket: string;
  log: Logger;
  /** ask the agent to stop dockerd and power off; false when no agent is connected */
  requestShutdown: (timeoutSeconds: number) => boolean;
  /** whether the agent said hello yet (asked when the stop starts) */
  agentSeen: () => boolean;
  /**
   * whether the guest init may have mounted the docker disk and started dockerd before the agent
   * is up (the early start): then a stop before the hello waits for it, since something is mounted
   */
  earlyStart: boolean;
  /** resolves when the agent says hello */
  hello?: Promise<void>;
  /** whether the guest reached its initramfs (before it, nothing can be mounted) */
  reachedInitramfs?: () => boolean;
  /** resolves when the guest reports "stopped" (dockerd stopped, disks unmounted and synced) */
  guestStopped?: Promise<void>;
  /** ms QEMU gets to exit after the guest said "stopped"; ms it gets to obey QMP quit; ms a stop before the hello waits for it */
  timings?: { stoppedGraceMs: number; quitWaitMs: number; helloWaitMs?: number };
}

/** Returns "clean" when the guest powered off by itself, "forced" when QEMU had to be ended. */
export async function stopVm(d: StopDeps, timeoutSeconds: number, reason: string): Promise<"clean" | "forced"> {
  if (!d.agentSeen() && (!d.earlyStart || !(d.reachedInitramfs?.() ?? true))) {
    d.log.info(`${reason} during boot: stopping QEMU (nothing is mounted yet)`);
    await qmpCommand(d.qmpSocket, "quit").catch(() => d.qemu.kill("SIGKILL"));
    await d.qemu.exited;
    return "clean";
  }
  if (!d.agentSeen()) {
    // The guest init may already have the docker disk mounted: only the agent can take it down.
    const waitMs = d.timings?.helloWaitMs ?? 90_000;
    d.log.info(`${reason} during boot: waiting up to ${waitMs / 1000} s for the agent to stop dockerd and unmount (the guest init started them early)`);
    const came = await Promise.race([
      (d.hello ?? new Promise<never>(() => undefined)).then(() => true),
      d.qemu.exited.then(() => false),
      delay(waitMs).then(() => false),
    ]);
    if (!came) {
      d.log.warn("no agent came to stop the guest cleanly: asking QEMU to quit");
      await quit(d, d.timings?.quitWaitMs ?? 10_000);
      return "forced";
    }
  }
  d.log.info(`${reason}: stopping dockerd in the guest (containers get ${timeoutSeconds} s)`);
  // dockerd needs the containers' timeout, then its own teardown; TCG is slow: a generous bound.
  const budgetMs = (timeoutSeconds + 30) * 1000;
  const { stoppedGraceMs, quitWaitMs } = d.timings ?? { stoppedGraceMs: 10_000, quitWaitMs: 10_000 };
  if (d.requestShutdown(timeoutSeconds)) {
    const stopped = d.guestStopped?.then(() => "stopped" as const) ?? new Promise<never>(() => undefined);
    const outcome = await Promise.race([d.qemu.exited.then(() => "exited" as const), stopped, delay(budgetMs).then(() => "timeout" as const)]);
    if (outcome === "exited") return "clean";
    if (outcome === "stopped") {
      if (await within(d.qemu.exited, stoppedGraceMs)) return "clean";
      // Seen with -netdev stream (passt): the guest resets, QEMU stays up. Its disks are already clean.
      d.log.warn("the guest stopped cleanly but QEMU did not exit after its power-off: asking QEMU to quit");
      await quit(d, quitWaitMs);
      return "clean";
    }
  }
  d.log.warn("guest did not power off in time: asking QEMU to quit");
  await quit(d, quitWaitMs);
  return "forced";
}

async function quit(d: Pick<StopDeps, "qemu" | "qmpSocket" | "log">, waitMs: number): Promise<void> {
  await qmpCommand(d.qmpSocket, "quit").catch(() => undefined);
  if (!(await within(d.qemu.exited, waitMs))) {
    d.log.warn("QEMU did not quit: killing it");
    d.qemu.kill("SIGKILL");
    await d.qemu.exited;
  }
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

/** Force now (a second signal): QMP quit, else SIGKILL. */
export async function forceQuit(d: Pick<StopDeps, "qemu" | "qmpSocket">): Promise<void> {
  await qmpCommand(d.qmpSocket, "quit").catch(() => d.qemu.kill("SIGKILL"));
}

export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const result = await Promise.race([promise.then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}
