// The launcher's control API (dinv CLI, HEALTHCHECK, CI scripts <-> `dinv run`), over a
// WebSocket on a unix socket. One JSON message per WebSocket message.

import { z } from "zod";
import { CacheInfoSchema, CacheSavedSchema } from "./cache.js";
import { BootStepSchema, StatusSnapshotSchema } from "./status.js";

export const ControlPhaseSchema = z.enum(["booting", "ready", "degraded", "stopping", "stopped", "failed"]);
export type ControlPhase = z.infer<typeof ControlPhaseSchema>;

export const ControlErrorSchema = z.object({
  /** who detected it */
  source: z.enum(["host", "guest"]),
  /** boot step, for guest errors */
  step: BootStepSchema.shape.name.optional(),
  /** what failed */
  message: z.string(),
  /** what to do */
  hint: z.string().optional(),
});

const proto = z.enum(["tcp", "udp"]);
const port = z.number().int().min(1).max(65535);

export const ForwardSchema = z.object({
  proto,
  /** launcher-side address it listens on */
  address: z.string(),
  /** launcher-side port */
  port,
  /** guest port it reaches */
  guestPort: port,
  /** configured (docker API, DINV_TCP_PORTS, DINV_UDP_PORTS) or published by a container */
  source: z.enum(["static", "auto"]),
  /** the container that published it (auto only) */
  container: z.string().optional(),
});

export const RefusedSchema = z.object({
  proto,
  port,
  /** the container that published it */
  container: z.string(),
  /** why it is not forwarded */
  reason: z.string(),
});

export const DinvStateSchema = z.object({
  type: z.literal("state"),
  /** the get-state or subscribe request this answers; null for an update pushed to a subscriber */
  id: z.number().int().nonnegative().nullable().optional(),
  /** snapshot number, strictly increasing for one launcher */
  seq: z.number().int().nonnegative(),
  /** launcher clock when taken, ms since the epoch */
  at: z.number(),
  /** overall readiness */
  phase: ControlPhaseSchema,
  /** why the run is in its present state (e.g. why it failed), as the launcher says it */
  reason: z.string().max(1000).optional(),
  /** accelerator in use, once QEMU started */
  accel: z.enum(["kvm", "tcg"]).nullable(),
  /** launcher process id */
  pid: z.number().int(),
  /** launcher start, ms since the epoch */
  startedAt: z.number(),
  /** machine type, vCPUs and guest memory in bytes */
  vm: z.object({ machine: z.enum(["microvm", "q35"]), cpus: z.number().int(), memoryBytes: z.number().int() }),
  /** docker API URL as reached from the launcher's side */
  dockerHost: z.string(),
  /** DOCKER_CERT_PATH for that URL when it requires TLS (DOCKER_TLS_VERIFY=1) */
  dockerCertPath: z.string().optional(),
  /** DINV_TCP_PORTS / DINV_UDP_PORTS: forwarded ports, launcher side = guest side */
  ports: z.object({ tcp: z.array(z.number().int()), udp: z.array(z.number().int()) }),
  /** every forward open now: the docker API's, the static ones, and those the guest's containers published */
  forwards: z.array(ForwardSchema),
  /** published ports the launcher does not forward, with why */
  refused: z.array(RefusedSchema),
  /** shared folders, same path in the guest */
  mounts: z.array(z.string()),
  /** dockerd version once it answered */
  dockerVersion: z.string().optional(),
  /** boot steps as the guest reports them */
  steps: z.array(BootStepSchema),
  /** problems in force, with hints */
  errors: z.array(ControlErrorSchema),
  /** ms since QEMU start at which each boot phase was reached */
  timeline: z.record(z.string(), z.number()).optional(),
  /** the guest's last snapshot, verbatim */
  guest: StatusSnapshotSchema.nullable(),
  /** how this run started: restored from a saved VM state (warm) or booted (cold), and why */
  warm: z.object({
    /** warm: restored; cold: booted */
    start: z.enum(["warm", "cold"]),
    /** why a cold boot (no state, a mismatch named, a failed restore), or what the restore did */
    reason: z.string().max(1000),
    /** QEMU start to the restored VM loaded and paused, ms (warm only) */
    loadMs: z.number().nonnegative().optional(),
    /** whether this run saved a state for later runs, and where, or why not */
    saved: z.string().max(1000).optional(),
  }).optional(),
  /** the shared docker-disk cache (DINV_CACHE_DIR), when configured */
  cache: CacheInfoSchema.optional(),
});
export type DinvState = z.infer<typeof DinvStateSchema>;

const id = z.number().int().nonnegative();

export const ControlRequestSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("get-state"), id }),
  z.object({ type: z.literal("subscribe"), id }),
  /** graceful stop, as SIGTERM; timeoutSeconds overrides DINV_SHUTDOWN_TIMEOUT */
  z.object({ type: z.literal("stop"), id, timeoutSeconds: z.number().int().min(0).max(3600).optional() }),
  /** ready and dockerd answering /_ping through the docker API forward */
  z.object({ type: z.literal("health"), id }),
  /** promote the job's docker disk to its cache key's next generation now; answered once it is safe on disk */
  z.object({ type: z.literal("cache-save"), id }),
]);
export type ControlRequest = z.infer<typeof ControlRequestSchema>;

/** What went wrong with a request: malformed or ill-typed; a type the launcher does not know; the launcher's own failure. */
export const ControlErrorCodeSchema = z.enum(["bad-request", "unknown-request", "internal"]);
export type ControlErrorCode = z.infer<typeof ControlErrorCodeSchema>;

export const ControlReplySchema = z.discriminatedUnion("type", [
  DinvStateSchema,
  z.object({ type: z.literal("ok"), id }),
  z.object({ type: z.literal("health"), id, healthy: z.boolean(), reason: z.string() }),
  CacheSavedSchema,
  z.object({ type: z.literal("error"), id: id.nullable(), code: ControlErrorCodeSchema, message: z.string() }),
]);
export type ControlReply = z.infer<typeof ControlReplySchema>;
