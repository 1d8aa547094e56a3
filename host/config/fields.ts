// The field parsers of the environment's schema (host/config/env.ts): text with a default, whole
// numbers and sizes in a range, ports, directories, lists, daemon.json. Each refusal says what is
// wrong; env.ts adds the variable, its value and what is allowed. Pure.

import { z } from "zod";
import { reservedDaemonKeys } from "../../shared/daemon-config.js";
import { checkPath, normalisePath, parsePortList } from "./lists.js";
import { parseSize } from "./size.js";

/** daemon.json keys dinv owns (the API sockets, TLS, the bridge, the data root, the stop timeout), from its renderer. */
export const RESERVED_DAEMON_KEYS = reservedDaemonKeys();

export const MAX_UID = 4294967294;

/** pino's levels a user may pick. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "silent"] as const;

export const text = (def: string) => z.string().optional().transform((v) => (v === undefined || v.trim() === "" ? def : v.trim()));

export const int = (def: string, min: number, max: number) =>
  text(def).transform((s, ctx) => {
    if (!/^\d+$/.test(s)) return fail(ctx, "not a whole number");
    const n = Number(s);
    if (n < min || n > max) return fail(ctx, `out of range`);
    return n;
  });

export const size = (def: string, min: number, max: number, bare: "" | "M") =>
  text(def).transform((s, ctx) => {
    const bytes = parseSize(s, bare);
    if (bytes === undefined) return fail(ctx, "not a size");
    if (bytes < min || bytes > max) return fail(ctx, "out of range");
    return bytes;
  });

export const ports = text("").transform((s, ctx) => {
  const result = parsePortList(s);
  return result.ok ? result.value : fail(ctx, result.reason);
});

/** A port 1-65535, or undefined when unset or empty. */
export const optionalPort = text("").transform((s, ctx) => {
  if (!s) return undefined;
  return /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? Number(s) : fail(ctx, "not a port 1-65535");
});

export const dir = (def: string) =>
  text(def).transform((s, ctx) => {
    const reason = checkPath(s);
    return reason && s !== "/" ? fail(ctx, reason) : normalisePath(s);
  });

export const list = (check: (item: string) => boolean, what: string) =>
  text("").transform((s, ctx) => {
    const items = s.split(";").map((i) => i.trim()).filter(Boolean);
    const bad = items.find((i) => !check(i));
    return bad === undefined ? items : fail(ctx, `"${bad}" is not ${what}`);
  });

export const daemonJson = text("{}").transform((s, ctx) => {
  let value: unknown;
  try {
    value = JSON.parse(s);
  } catch (err) {
    return fail(ctx, `not JSON (${(err as Error).message})`);
  }
  const parsed = z.record(z.string(), z.unknown()).safeParse(value);
  if (!parsed.success || Array.isArray(value)) return fail(ctx, "not a JSON object");
  const reserved = Object.keys(parsed.data).filter((k) => RESERVED_DAEMON_KEYS.includes(k));
  if (reserved.length) return fail(ctx, `sets ${reserved.join(", ")}, which dinv sets itself (use DINV_BIP, DINV_SHUTDOWN_TIMEOUT)`);
  return parsed.data;
});

/** Where the container image keeps the launcher, its guest and its seccomp profile. */
export const LAUNCHER_DIR = "/usr/lib/dinv";

/** Whether one path is the other or lies inside it (normalised absolute paths). */
export const overlaps = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

export const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

export function fail(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: "custom", message });
  return z.NEVER as never;
}


export const GiB = 2 ** 30;
export const MiB = 2 ** 20;
