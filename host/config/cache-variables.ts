// The shared cache's variables (DINV_CACHE_*), each on its own: part of `dinv run`'s schema, and all
// that the `dinv cache` commands parse. Pure.

import { z } from "zod";
import { cacheKeyProblem, DEFAULT_CACHE_KEY } from "../cache/key.js";
import { checkPath, normalisePath } from "./lists.js";
import { fail, GiB, size, text } from "./fields.js";

/** The shared cache's variables (the `dinv cache` commands parse only these). */
export const cacheVariables = {
  DINV_CACHE_DIR: text("").transform((s, ctx) => {
    if (!s) return undefined;
    const reason = checkPath(s);
    return reason ? fail(ctx, reason) : normalisePath(s);
  }),
  DINV_CACHE_KEY: text(DEFAULT_CACHE_KEY).transform((s, ctx) => {
    const problem = cacheKeyProblem(s);
    return problem ? fail(ctx, problem) : s;
  }),
  DINV_CACHE_RESTORE_KEYS: text("").transform((s, ctx) => {
    const keys = s.split(";").map((k) => k.trim()).filter((k) => k !== "");
    const bad = keys.map((k) => [k, cacheKeyProblem(k)] as const).find(([, p]) => p);
    if (bad) return fail(ctx, `"${bad[0]}" ${bad[1]}`);
    return keys.length > 16 ? fail(ctx, "lists more than 16 keys") : keys;
  }),
  DINV_CACHE_SAVE: text("on-stop").pipe(z.enum(["on-stop", "off"], { message: "must be on-stop or off" })),
  DINV_CACHE_MAX: size("20G", GiB, 64 * 1024 * GiB, ""),
};

