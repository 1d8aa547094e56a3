// Messages the host sends the guest agent.

import { z } from "zod";
import { DockerdSpecSchema, GuestConfigSchema } from "./guest-config.js";

export const ConfigMessageSchema = z.object({
  type: z.literal("config"),
  /** everything the guest needs to bring dockerd up */
  config: GuestConfigSchema,
});

export const StatusRequestSchema = z.object({
  type: z.literal("status-request"),
});

export const ShutdownSchema = z.object({
  type: z.literal("shutdown"),
  /** time dockerd gets to stop its containers, seconds */
  timeoutSeconds: z.number().int().min(0).max(3600),
});

const id = z.number().int().min(0).max(4294967294);

/** After a warm start (the VM restored from a saved state): make this copy of the guest its own. */
export const RenewSchema = z.object({
  type: z.literal("renew"),
  /** host wall clock when sent, milliseconds since the Unix epoch */
  unixTimeMs: z.number().int().positive(),
  /** fresh host entropy for the guest's random pool: base64 of 64 bytes */
  entropy: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
  /** owner uid of /var/run/docker.sock in this run */
  sockUid: id,
  /** owner gid of /var/run/docker.sock in this run */
  sockGid: id,
  /** this run's dockerd configuration, sent only when it differs from the saved one: dockerd is restarted with it */
  dockerd: DockerdSpecSchema.optional(),
});

const requestId = z.number().int().min(0).max(2 ** 31);

/** Before the host snapshots the docker disk: freeze its filesystem (fsfreeze), answered by freeze-result. */
export const FreezeSchema = z.object({
  type: z.literal("freeze"),
  id: requestId,
  /** the guest thaws by itself after this long if no thaw comes, ms */
  thawAfterMs: z.number().int().min(100).max(120_000),
});

/** The snapshot is taken (or failed): thaw the docker disk's filesystem. */
export const ThawSchema = z.object({
  type: z.literal("thaw"),
  /** the freeze this ends */
  id: requestId,
});

/** The answer to the guest's cache-save request (the dinv-cache volume driver's create). */
export const CacheSaveResultSchema = z.object({
  type: z.literal("cache-save-result"),
  /** the guest's request id */
  id: requestId,
  ok: z.boolean(),
  /** what was saved, or why not */
  message: z.string().max(1000),
});

/**
 * The host holds the guest's last state (its shutdown step ended): the guest may end the VM now.
 * Without it a "stopped" written just before the reboot can die in the virtio queue, unread.
 */
export const PowerOffSchema = z.object({
  type: z.literal("power-off"),
});

export const HostMessageSchema = z.discriminatedUnion("type", [ConfigMessageSchema, StatusRequestSchema, ShutdownSchema, RenewSchema, FreezeSchema, ThawSchema, CacheSaveResultSchema, PowerOffSchema]);
export type Renew = z.infer<typeof RenewSchema>;
export type HostMessage = z.infer<typeof HostMessageSchema>;
