// Meaning on top of framing: JSON text validated by a zod schema. Rejections carry a reason
// and never throw, so one bad message never ends a session.

import type { z } from "zod";

/** Why a message was rejected: its bytes, its JSON, or its shape (path: where in the message). */
export type DecodeFailure =
  | { ok: false; kind: "encoding" | "depth" | "json"; reason: string }
  | { ok: false; kind: "schema"; path: string; reason: string };
export type Decoded<T> = { ok: true; value: T } | DecodeFailure;

/** Nesting depth beyond which a payload is rejected before JSON.parse (hostile deep JSON). */
const MAX_DEPTH = 64;

function tooDeep(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash escapes the next char
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_DEPTH) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

export function encodeMessage(message: unknown): Buffer {
  return Buffer.from(JSON.stringify(message), "utf8");
}

export function decodeMessage<S extends z.ZodType>(schema: S, payload: Uint8Array): Decoded<z.infer<S>> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    return { ok: false, kind: "encoding", reason: "payload is not valid UTF-8" };
  }
  if (tooDeep(text)) return { ok: false, kind: "depth", reason: `JSON nested deeper than ${MAX_DEPTH}` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, kind: "json", reason: `invalid JSON: ${(err as Error).message.slice(0, 200)}` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join(".") || "(root)";
    return { ok: false, kind: "schema", path: where, reason: `schema: ${where}: ${issue?.message ?? "invalid"}` };
  }
  return { ok: true, value: parsed.data };
}
