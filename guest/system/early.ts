// The early start of dockerd by the guest init (alpine/rootfs/usr/lib/dinv/early-dockerd): was
// there one, and what did it do. The result file is parsed strictly; anything odd means "not
// adopted" and the agent does the work itself.

import { readFile, access } from "node:fs/promises";
import { z } from "zod";
import type { EarlyStartResult } from "./types.js";
import { GUEST_FILES } from "../../shared/guest-paths.js";
import { EARLY_BOOT_DIR } from "../../shared/constants.js";

/** The boot files' directory (copied from the initramfs) and the script's result file. */
export const EARLY_BOOT_FILES = `/run/${EARLY_BOOT_DIR}/daemon.json`;
export const EARLY_RESULT = GUEST_FILES.earlyResult;
/** Where the early dockerd's output goes (the agent follows it). */
export const EARLY_DOCKERD_LOG = GUEST_FILES.dockerdLog;

const seconds = z.coerce.number().positive().max(1e6);
const EarlyStartSchema = z.discriminatedUnion("state", [
  z.object({
    state: z.literal("started"),
    /** dockerd's pid */
    pid: z.coerce.number().int().min(2).max(4194304),
    /** guest uptime when the docker disk's preparation began, s */
    disk_start_s: seconds,
    /** guest uptime when the docker disk was mounted, s */
    disk_s: seconds,
    /** guest uptime when dockerd was started, s */
    dockerd_s: seconds,
    /** what was done to the disk */
    detail: z.string().min(1).max(500),
  }),
  z.object({
    state: z.literal("skipped"),
    /** why the init left the work to the agent */
    reason: z.string().max(500),
  }),
]);

/** early.rc's key=value lines -> the result, or an error text. Pure. */
export function parseEarlyResult(text: string): EarlyStartResult {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const parsed = EarlyStartSchema.safeParse(fields);
  if (!parsed.success) return { state: "invalid", reason: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") };
  const r = parsed.data;
  if (r.state === "skipped") return r;
  const ms = (s: number) => Math.round(s * 1000);
  return { state: "started", pid: r.pid, diskStartMs: ms(r.disk_start_s), diskMs: ms(r.disk_s), dockerdMs: ms(r.dockerd_s), detail: r.detail };
}

/** undefined when the launcher sent no boot files (no early start); else waits for the script. */
export async function waitEarlyStart(timeoutMs = 180_000): Promise<EarlyStartResult | undefined> {
  if (!(await access(EARLY_BOOT_FILES).then(() => true, () => false))) return undefined;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(EARLY_RESULT, "utf8").catch(() => undefined);
    if (text !== undefined) return parseEarlyResult(text);
    if (Date.now() > deadline) return { state: "invalid", reason: `no result from the init's early start within ${timeoutMs / 1000} s` };
    await new Promise((r) => setTimeout(r, 100));
  }
}
