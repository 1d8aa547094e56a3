// Making a restored guest its own: the same RAM image runs in every copy restored from one state,
// so the kernel's random pool, the clock and every id derived from them would be shared. One exec
// of a small helper does it all (alpine/tools/renew.c); node:child_process directly, not execa,
// because this runs first after a restore, when every new code path is translated again under TCG.

import { spawnSync } from "node:child_process";

/** The helper (alpine/tools/renew.c). */
export const RENEW_HELPER = "/usr/lib/dinv/dinv-renew";

/** Reseed the kernel's pool with the host's entropy, set the clock, write a new machine-id; returns a new boot id. */
export function renewGuest(entropy: Buffer, unixTimeMs: number): string {
  const r = spawnSync(RENEW_HELPER, [String(Math.round(unixTimeMs))], { input: entropy, timeout: 10_000 });
  const out = String(r.stdout ?? "").trim();
  if (r.status !== 0 || !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(out)) {
    throw new Error(`${RENEW_HELPER} failed (${r.status ?? r.signal ?? r.error?.message}): ${String(r.stderr ?? "").trim() || out}`);
  }
  return out;
}
