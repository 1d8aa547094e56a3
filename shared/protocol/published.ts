// The ports the guest's containers publish, as the agent reports them: always the full set, never
// a delta, so a lost or late message loses nothing. The launcher decides what to forward.

import { z } from "zod";
import { boundedText } from "./status.js";

/** Largest set the agent may send; the launcher forwards far fewer (see host/publish/policy.ts). */
export const MAX_PUBLISHED_ENTRIES = 4096;

export const PublishedPortSchema = z.object({
  /** transport protocol */
  proto: z.enum(["tcp", "udp"]),
  /** where dockerd bound it in the guest: every address (0.0.0.0 / ::), or loopback only (127.0.0.1 / ::1) */
  scope: z.enum(["all", "loopback"]),
  /** the published port in the guest, 1-65535 (the launcher forwards the same port number) */
  port: z.number().int().min(1).max(65535),
  /** name of the container publishing it, for status lines */
  container: boundedText(128),
});
export type PublishedPort = z.infer<typeof PublishedPortSchema>;

export const PublishedSchema = z.object({
  type: z.literal("published"),
  /** set number within one boot, strictly increasing */
  seq: z.number().int().nonnegative(),
  /** guest wall clock when taken, milliseconds since the Unix epoch */
  at: z.number().nonnegative(),
  /** random id of this guest boot */
  bootId: boundedText(64),
  /** every port published right now */
  ports: z.array(PublishedPortSchema).max(MAX_PUBLISHED_ENTRIES),
});
export type Published = z.infer<typeof PublishedSchema>;

/** A stable key of one published port. */
export const publishedKey = (p: Pick<PublishedPort, "proto" | "port">) => `${p.proto}/${p.port}`;
