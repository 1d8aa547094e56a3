// The guest's readiness as one snapshot. Every status event is a full snapshot, so a reader
// that joins late (or misses an event) still sees the whole state.

import { z } from "zod";

/** Short, bounded text from the guest (the guest is untrusted: cap every string). */
export const boundedText = (max: number) => z.string().max(max);

export const StepNameSchema = z.enum([
  "init", // guest init script ran its prerequisites (modules, cgroups, network)
  "agent", // agent process started and said hello
  "config", // host configuration received and validated
  "disks", // docker (and volume) disks found, checked, formatted if blank, mounted
  "mounts", // shared folders mounted
  "dockerd", // dockerd started
  "ping", // dockerd answered /_ping on its socket
  "shutdown", // dockerd stopped, filesystems unmounted and synced
]);
export type StepName = z.infer<typeof StepNameSchema>;

export const BootStepSchema = z.object({
  /** step identifier */
  name: StepNameSchema,
  /** progress of the step */
  state: z.enum(["pending", "running", "ok", "failed"]),
  /** guest uptime when the step started, milliseconds since kernel start */
  startedMs: z.number().nonnegative().optional(),
  /** guest uptime when the step ended, milliseconds since kernel start */
  endedMs: z.number().nonnegative().optional(),
  /** one-line detail (e.g. "formatted blank disk", error text) */
  detail: boundedText(1000).optional(),
});
export type BootStep = z.infer<typeof BootStepSchema>;

export const GuestErrorSchema = z.object({
  /** step that failed */
  step: StepNameSchema,
  /** what failed, in words a user can act on */
  message: boundedText(2000),
  /** what to do about it */
  hint: boundedText(1000).optional(),
});
export type GuestError = z.infer<typeof GuestErrorSchema>;

export const PhaseSchema = z.discriminatedUnion("phase", [
  z.object({ phase: z.literal("booting") }),
  z.object({ phase: z.literal("ready") }),
  z.object({ phase: z.literal("degraded"), errors: z.array(GuestErrorSchema).min(1).max(32) }),
  z.object({ phase: z.literal("stopping") }),
  z.object({ phase: z.literal("stopped") }),
]);
export type Phase = z.infer<typeof PhaseSchema>;

export const StatusSnapshotSchema = z.object({
  type: z.literal("status"),
  /** snapshot sequence number within one boot, strictly increasing */
  seq: z.number().int().nonnegative(),
  /** guest wall clock when taken, milliseconds since the Unix epoch */
  at: z.number().nonnegative(),
  /** guest uptime when taken, milliseconds since kernel start */
  uptimeMs: z.number().nonnegative(),
  /** random id of this guest boot */
  bootId: boundedText(64),
  /** readiness */
  state: PhaseSchema,
  /** boot and shutdown steps in order */
  steps: z.array(BootStepSchema).max(32),
  /** dockerd version once it answered */
  dockerVersion: boundedText(64).optional(),
});
export type StatusSnapshot = z.infer<typeof StatusSnapshotSchema>;
