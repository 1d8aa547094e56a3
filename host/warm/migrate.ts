// Saving and restoring a VM with QEMU's migration, over QMP. The state is QEMU's stream format,
// written to a file: URI, or through `exec:cat` where QEMU has none (7.2); the VM is paused first,
// so the stream and the docker disk copied right after it describe one instant.

import { z } from "zod";
import { qmpCommand } from "../qemu/qmp.js";
import { outgoingUri } from "./uri.js";

const MigrateStatusSchema = z.object({
  status: z.string().optional(),
  "error-desc": z.string().optional(),
}).passthrough();

/** query-migrate until the migration completed or failed; aborted by the signal. */
export async function waitMigration(qmpSocket: string, signal: AbortSignal, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    const raw = await qmpCommand(qmpSocket, "query-migrate").catch((err: Error) => ({ status: "unanswered", "error-desc": err.message }));
    const reply = MigrateStatusSchema.parse(raw ?? {});
    if (reply.status === "completed") return;
    if (reply.status === "failed" || reply.status === "cancelled") throw new Error(`migration ${reply.status}${reply["error-desc"] ? `: ${reply["error-desc"]}` : ""}`);
    if (Date.now() > deadline) throw new Error(`migration not finished within ${timeoutMs / 1000} s (status ${reply.status ?? "none"})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** QMP answers once QEMU has created its socket: wait for that. */
export async function waitQmp(qmpSocket: string, signal: AbortSignal, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    try {
      await qmpCommand(qmpSocket, "query-status", { timeoutMs: 2000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`QMP did not answer within ${timeoutMs / 1000} s: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Pause the VM, write its state to statePath, run `whilePaused` (the docker disk's copy), and let the
 * VM run on whatever happened: the user's VM is never left paused by a save.
 */
export async function saveVm(qmpSocket: string, statePath: string, fileMigration: boolean, whilePaused: () => Promise<void>, signal: AbortSignal): Promise<{ pauseMs: number }> {
  const paused = Date.now();
  await qmpCommand(qmpSocket, "stop");
  try {
    // QEMU throttles a migration to 32 MiB/s by default (128 MiB/s since 8.x); a file takes all it can.
    await qmpCommand(qmpSocket, "migrate-set-parameters", { arguments: { "max-bandwidth": 64 * 2 ** 30 } });
    await qmpCommand(qmpSocket, "migrate", { arguments: { uri: outgoingUri(statePath, fileMigration) } });
    await waitMigration(qmpSocket, signal);
    await whilePaused();
  } finally {
    // cont after a completed migration takes the disks back from the (absent) destination.
    await qmpCommand(qmpSocket, "cont").catch(() => undefined);
  }
  return { pauseMs: Date.now() - paused };
}
