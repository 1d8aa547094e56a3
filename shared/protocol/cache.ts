// The shared docker-disk cache as the control API shows it (dinv status, dinv cache save).

import { z } from "zod";

export const CacheInfoSchema = z.object({
  /** DINV_CACHE_KEY: the cache this run's job belongs to */
  key: z.string().max(128),
  /** the generation the docker disk is an overlay of; null when the run started empty */
  generation: z.number().int().positive().nullable(),
  /** the restore key whose generation the run started from, when its own key had none */
  restoredFrom: z.string().max(128).optional(),
  /** that generation's image size, bytes */
  bytes: z.number().int().nonnegative().optional(),
  /** why the run uses no generation, or which it uses, as the launcher says it */
  reason: z.string().max(1000),
  /** on-stop: a clean stop promotes the job; off: never */
  save: z.enum(["on-stop", "off"]),
  /** the last promotion of this run: the generation it made, its size in bytes and its time in ms; or why it failed */
  lastSave: z
    .object({ ok: z.boolean(), generation: z.number().int().positive().optional(), bytes: z.number().int().nonnegative().optional(), ms: z.number().nonnegative().optional(), message: z.string().max(1000) })
    .optional(),
});
export type CacheInfo = z.infer<typeof CacheInfoSchema>;

/** The answer to a cache-save request: the generation made, or why none was. */
export const CacheSavedSchema = z.object({
  type: z.literal("cache-saved"),
  id: z.number().int().nonnegative(),
  ok: z.boolean(),
  /** the generation made, when ok */
  generation: z.number().int().positive().optional(),
  /** its image size, bytes */
  bytes: z.number().int().nonnegative().optional(),
  /** what was done, or why it failed */
  message: z.string().max(1000),
});
