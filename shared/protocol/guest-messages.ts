// Messages the guest agent sends the host. The host treats every one as untrusted input.

import { z } from "zod";
import { PublishedSchema } from "./published.js";
import { StatusSnapshotSchema, boundedText } from "./status.js";

export const HelloSchema = z.object({
  type: z.literal("hello"),
  /** protocol version the agent speaks */
  protocolVersion: z.number().int().min(0).max(1000),
  /** random id of this guest boot */
  bootId: boundedText(64),
  /** agent build version */
  agentVersion: boundedText(64),
  /** guest uptime at hello, milliseconds since kernel start */
  uptimeMs: z.number().nonnegative(),
  /** guest uptime when the init script started, milliseconds since kernel start */
  initStartedMs: z.number().nonnegative().optional(),
  /** after a renew: what the agent did to make the restored guest its own, or why it could not */
  renewed: z.object({ ok: z.boolean(), detail: boundedText(1000) }).optional(),
});

export const LogSchema = z.object({
  type: z.literal("log"),
  /** severity */
  level: z.enum(["debug", "info", "warn", "error"]),
  /** the line, truncated by the guest to 4 KiB */
  msg: boundedText(4096),
  /** source inside the guest, e.g. "dockerd" */
  source: boundedText(32).optional(),
});

const requestId = z.number().int().min(0).max(2 ** 31);

/** The answer to a freeze: the docker disk's filesystem is frozen (ok), or why it is not. */
export const FreezeResultSchema = z.object({
  type: z.literal("freeze-result"),
  /** the host's freeze id */
  id: requestId,
  ok: z.boolean(),
  /** what was done, or why it failed */
  detail: boundedText(1000),
});

/** A job asked, through the guest's docker API (the dinv-cache volume driver), to promote its docker disk now. */
export const CacheSaveRequestSchema = z.object({
  type: z.literal("cache-save-request"),
  /** the guest's id for it, echoed by cache-save-result */
  id: requestId,
});

export const GuestMessageSchema = z.discriminatedUnion("type", [HelloSchema, StatusSnapshotSchema, LogSchema, PublishedSchema, FreezeResultSchema, CacheSaveRequestSchema]);
export type GuestMessage = z.infer<typeof GuestMessageSchema>;
export type Hello = z.infer<typeof HelloSchema>;
export type GuestLog = z.infer<typeof LogSchema>;
