// Messages the host sends the guest agent.

import { z } from "zod";
import { GuestConfigSchema } from "./guest-config.js";

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

export const HostMessageSchema = z.discriminatedUnion("type", [ConfigMessageSchema, StatusRequestSchema, ShutdownSchema]);
export type HostMessage = z.infer<typeof HostMessageSchema>;
