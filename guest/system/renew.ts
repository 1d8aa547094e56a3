// Making a restored guest its own: the same RAM image runs in every copy restored from one state,
// so the kernel's random pool, the clock and every id derived from them would be shared. One exec
// of a small helper does it all (alpine/tools/renew.c); node:child_process directly, not execa,
// because this runs first after a restore, when every new code path is translated again under TCG.

import { spawnSync } from "node:child_process";

/** The helper (alpine/tools/renew.c). */
export const RENEW_HELPER = "/usr/lib/dinv/dinv-renew";

/** "BOOT_ID COPIES", the helper's answer -> its parts; undefined when it is not that. Pure. */
export function parseRenewOutput(out: string): { bootId: string; engineIdCopies: number } | undefined {
  const m = /^([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}) (\d+)$/.exec(out.trim());
  return m ? { bootId: m[1]!, engineIdCopies: Number(m[2]) } : undefined;
}

/**
 * Reseed the kernel's pool with the host's entropy, set the clock, write a new machine-id and, with
 * `dockerd` given, a new engine ID for it; returns a new boot id and how many copies of the old engine
 * ID dockerd's memory held.
 */
export function renewGuest(entropy: Buffer, unixTimeMs: number, dockerd?: { pid: number; engineIdFile: string }): { bootId: string; engineIdCopies: number } {
  const args = [String(Math.round(unixTimeMs)), ...(dockerd ? [String(dockerd.pid), dockerd.engineIdFile] : [])];
  const r = spawnSync(RENEW_HELPER, args, { input: entropy, timeout: 10_000 });
  const out = String(r.stdout ?? "");
  const parsed = r.status === 0 ? parseRenewOutput(out) : undefined;
  if (!parsed) throw new Error(`${RENEW_HELPER} failed (${r.status ?? r.signal ?? r.error?.message}): ${String(r.stderr ?? "").trim() || out.trim()}`);
  return parsed;
}
