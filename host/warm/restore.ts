// A warm start: QEMU restores the saved VM (paused), the launcher hands the guest its renewal
// (entropy, clock, socket owner) and only then lets it run, and waits for the renewed hello.
// Any failure ends this QEMU and returns the reason: the caller boots cold instead.

import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import type { DockerdSpec } from "../../shared/protocol/guest-config.js";
import type { Renew } from "../../shared/protocol/host-messages.js";
import type { Logger } from "../log.js";
import { qmpCommand } from "../qemu/qmp.js";
import { startQemu, untilExit, type QemuProcess } from "../qemu/process.js";
import { waitMigration, waitQmp } from "./migrate.js";
import { ignoreShared } from "./template.js";
import { within } from "../../shared/within.js";

export interface RestoreOptions {
  qemuBinary: string;
  /** QEMU's arguments, with -incoming */
  args: string[];
  /**
   * the saved stream (open as QEMU's fd 3 unless the QEMU reads it from a file: URI); or, for a
   * mapped restore (QEMU started with -incoming defer over the RAM file), the device state
   */
  source: { kind: "stream"; path: string; fileMigration: boolean } | { kind: "mapped"; devicesPath: string };
  /** the state is loaded (the VM still paused), ms after QEMU started */
  onLoaded?: (loadMs: number) => void;
  /** the state's digest check, run meanwhile: undefined when it matches, else why not */
  verified: Promise<string | undefined>;
  qmpSocket: string;
  log: Logger;
  /** the renewal goes to the guest first; resolves with its answer */
  renew: (message: Renew) => Promise<{ ok: boolean; detail: string }>;
  sockOwner: { uid: number; gid: number };
  /** this run's dockerd configuration, when the saved guest's differs */
  dockerd?: DockerdSpec;
  /** each QEMU started (monitor, stop controller) */
  onStart: (qemu: QemuProcess) => void;
  onConsole: (line: string) => void;
  signal: AbortSignal;
  /** how long the restored guest may take to answer the renewal, ms */
  renewTimeoutMs?: number;
}

export type RestoreResult =
  | { ok: true; qemu: QemuProcess; loadMs: number; renewMs: number; detail: string }
  | { ok: false; reason: string; stopped?: true };

export async function restoreVm(o: RestoreOptions): Promise<RestoreResult> {
  o.log.info("starting QEMU to restore the saved VM");
  o.log.debug({ args: o.args }, "qemu command line");
  const src = o.source;
  const state = src.kind === "stream" && !src.fileMigration ? await open(src.path, "r") : undefined;
  let refusedDiscards = 0;
  const onStderr = (line: string) => {
    // A mapped RAM file is read-only underneath: QEMU refuses the balloon's free page reports (and
    // says so for each); the guest's pages stay as they are, nothing is lost. Counted, said once.
    if (src.kind === "mapped" && line.includes("ram_block_discard_range")) {
      if (refusedDiscards++ === 0) o.log.info("free page reporting is off on a mapped RAM file: QEMU keeps the pages the guest frees");
      return;
    }
    o.log.warn({ src: "qemu" }, line);
  };
  let qemu: QemuProcess;
  try {
    qemu = startQemu(o.qemuBinary, o.args, o.onConsole, onStderr, state?.fd);
  } finally {
    // QEMU holds its own copy of the descriptor.
    await state?.close();
  }
  o.onStart(qemu);
  const step = untilExit(qemu, (e) => `QEMU exited (${e.exitCode ?? e.signal}) while restoring`);
  try {
    await step(waitQmp(o.qmpSocket, o.signal));
    if (src.kind === "mapped") {
      // The device state was saved with x-ignore-shared: it names the RAM block and carries no pages.
      await step(ignoreShared(o.qmpSocket, true));
      await step(qmpCommand(o.qmpSocket, "migrate-incoming", { arguments: { uri: `file:${src.devicesPath}` } }));
    }
    await step(waitMigration(o.qmpSocket, o.signal));
    // A corrupted state can load without error: the guest never runs unless the digest matches.
    const bad = await step(o.verified);
    if (bad) throw new Error(bad);
    const loadMs = Date.now() - qemu.startedAt;
    o.onLoaded?.(loadMs);
    const renewing = o.renew({
      type: "renew",
      unixTimeMs: Date.now(),
      entropy: randomBytes(64).toString("base64"),
      sockUid: o.sockOwner.uid,
      sockGid: o.sockOwner.gid,
      ...(o.dockerd ? { dockerd: o.dockerd } : {}),
    });
    const resumed = Date.now();
    // The state was saved paused, so the restored VM waits for this; the renew is queued before it.
    await step(qmpCommand(o.qmpSocket, "cont"));
    const timeoutMs = o.renewTimeoutMs ?? 30_000;
    const answer = await step(Promise.race([
      renewing,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the restored guest did not answer its renewal within ${timeoutMs / 1000} s`)), timeoutMs).unref()),
    ]));
    if (!answer.ok) throw new Error(`the restored guest could not be renewed: ${answer.detail}`);
    return { ok: true, qemu, loadMs, renewMs: Date.now() - resumed, detail: answer.detail };
  } catch (err) {
    qemu.kill("SIGKILL");
    await qemu.exited;
    if (o.signal.aborted) return { ok: false, reason: "stopped while restoring", stopped: true };
    // QEMU can fail on a damaged state before its digest is done: then the digest names the cause.
    const bad = await within(o.verified, 10_000);
    return { ok: false, reason: bad ?? (err as Error).message };
  }
}
