// Starting QEMU under watchdogs: a kernel that never reaches the initramfs is retried (under TCG
// guests sometimes hang before printing anything, or after a few kernel lines; nothing is mounted
// yet, so killing QEMU then loses nothing), and under KVM a missing agent hello means the KVM
// cannot run the guest.

import { INITRAMFS_STARTED } from "../../shared/constants.js";
import type { Logger } from "../log.js";
import { startQemu, type QemuProcess } from "../qemu/process.js";

export interface BootOptions {
  qemuBinary: string;
  argsFor: (accel: "kvm" | "tcg") => string[];
  accel: "kvm" | "tcg";
  /** whether the guest's agent said hello after `since` (launcher clock, ms) */
  helloSince: (since: number) => boolean;
  stopping: () => boolean;
  log: Logger;
  consoleTimeoutMs: number;
  /** under KVM, fall back to TCG when no hello came in this long; undefined: never fall back (DINV_ACCEL=kvm) */
  kvmHelloTimeoutMs?: number;
  attempts: number;
  /** each attempt's QEMU, and whether its guest reached the initramfs yet (before it nothing can be mounted) */
  onStart?: (qemu: QemuProcess, accel: "kvm" | "tcg", reachedInitramfs: () => boolean) => void;
  /** side processes QEMU connects to (virtiofsd) must be running before each start */
  beforeStart?: () => Promise<void>;
  /** whether a console line of so many bytes may be logged (the guest's byte budget) */
  consoleBudget?: (bytes: number) => { allowed: boolean; suppressed: number };
}

export type BootResult = { ok: true; qemu: QemuProcess; accel: "kvm" | "tcg" } | { ok: false; reason: string; stopped?: true };

type Verdict = "ok" | "silent" | "stalled" | "exited";

export async function bootWithWatchdog(o: BootOptions): Promise<BootResult> {
  let accel = o.accel;
  for (let attempt = 1; ; attempt++) {
    // A stop asked for before this attempt: no QEMU is started for it.
    if (o.stopping()) return { ok: false, reason: "stopped before QEMU started", stopped: true };
    try {
      await o.beforeStart?.();
    } catch (err) {
      // virtiofsd or passt could not start again for this attempt: a clear failure, not a crash.
      return { ok: false, reason: `cannot start what QEMU connects to: ${(err as Error).message}` };
    }
    const args = o.argsFor(accel);
    o.log.info({ accel, attempt }, "starting QEMU");
    o.log.debug({ args }, "qemu command line");
    const seen = { initramfs: false };
    const onConsole = (line: string) => {
      if (line.includes(INITRAMFS_STARTED)) seen.initramfs = true;
      const gate = o.consoleBudget?.(line.length) ?? { allowed: true, suppressed: 0 };
      if (gate.suppressed) o.log.warn({ suppressed: gate.suppressed }, "guest console lines suppressed (rate limit)");
      if (gate.allowed) o.log.info({ src: "console" }, line);
    };
    const qemu = startQemu(o.qemuBinary, args, onConsole, (line) => o.log.warn({ src: "qemu" }, line));
    o.onStart?.(qemu, accel, () => seen.initramfs);
    const verdict = await watch(qemu, o, seen, accel === "kvm" ? o.kvmHelloTimeoutMs : undefined);
    if (verdict === "exited" && !seen.initramfs && !o.stopping() && attempt < o.attempts) {
      // Under TCG a guest sometimes resets before its first line (QEMU, with -no-reboot, then exits 0):
      // nothing is mounted yet, so another boot loses nothing.
      const how = await qemu.exited;
      o.log.warn(`QEMU exited (code ${how.exitCode ?? how.signal}) before the guest reached its initramfs; retrying (${attempt}/${o.attempts})`);
      continue;
    }
    if (verdict === "ok" || verdict === "exited") return { ok: true, qemu, accel };
    qemu.kill("SIGKILL");
    await qemu.exited;
    if (verdict === "stalled") {
      o.log.warn(`WARNING: no agent hello within ${(o.kvmHelloTimeoutMs ?? 0) / 1000} s under KVM: this KVM cannot run the guest; falling back to TCG, expect it to be slow`);
      accel = "tcg";
      continue;
    }
    const what = qemu.sawConsole ? "the guest kernel did not reach its initramfs" : "guest printed nothing";
    if (attempt >= o.attempts) return { ok: false, reason: `${what} in ${attempt} attempts of ${o.consoleTimeoutMs / 1000} s` };
    o.log.warn(`${what} within ${o.consoleTimeoutMs / 1000} s; killed QEMU, retrying (${attempt}/${o.attempts})`);
  }
}

async function watch(qemu: QemuProcess, o: BootOptions, seen: { initramfs: boolean }, helloTimeoutMs: number | undefined): Promise<Verdict> {
  const started = Date.now();
  let exited = false;
  void qemu.exited.then(() => (exited = true));
  for (;;) {
    if (exited) return "exited";
    if (o.stopping()) return "ok";
    const elapsed = Date.now() - started;
    if (o.helloSince(started)) return "ok";
    if (!seen.initramfs && elapsed > o.consoleTimeoutMs) return "silent";
    if (helloTimeoutMs !== undefined && elapsed > helloTimeoutMs) return "stalled";
    if (helloTimeoutMs === undefined && seen.initramfs) return "ok";
    await new Promise((r) => setTimeout(r, 100));
  }
}
