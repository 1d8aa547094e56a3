// Cache keys and generations: what a key may be, the directory a key lives in, and which
// generation a start takes (its key's newest, else the first restore key that has one). Pure.

import { createHash } from "node:crypto";

export const DEFAULT_CACHE_KEY = "default";
export const CACHE_KEY_ALLOWED = "1-128 letters, digits and ._/-, starting with a letter or digit";
const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

/** Why a string is not a cache key, or undefined. */
export function cacheKeyProblem(key: string): string | undefined {
  if (!KEY.test(key)) return `is not a cache key: ${CACHE_KEY_ALLOWED}`;
  if (key.split("/").some((part) => part === "." || part === "..")) return "is not a cache key: no . or .. between slashes";
  return undefined;
}

/** The directory name of a key: a digest, so no key (slashes, dots, case) names a path of its own. */
export function keyDirName(key: string): string {
  return `k-${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

/** The directory name of a key's generation n. */
export const generationDirName = (n: number) => `gen-${String(n).padStart(8, "0")}`;

/** A generation's number from its directory name, or undefined for any other name. */
export function generationNumber(name: string): number | undefined {
  const m = /^gen-(\d{8})$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export interface KeyGenerations {
  key: string;
  /** complete generations (their meta written), any order */
  generations: number[];
}

export type CacheChoice =
  | { kind: "generation"; key: string; generation: number; restoredFrom?: string }
  | { kind: "empty"; reason: string };

/** Which generation a start takes: the key's newest, else the newest of the first restore key that has one. */
export function chooseGeneration(key: string, restoreKeys: string[], known: KeyGenerations[]): CacheChoice {
  const newest = (k: string) => {
    const gens = known.find((g) => g.key === k)?.generations ?? [];
    return gens.length ? Math.max(...gens) : undefined;
  };
  const own = newest(key);
  if (own !== undefined) return { kind: "generation", key, generation: own };
  for (const restore of restoreKeys) {
    const gen = newest(restore);
    if (gen !== undefined) return { kind: "generation", key: restore, generation: gen, restoredFrom: restore };
  }
  const tried = [key, ...restoreKeys].map((k) => `"${k}"`).join(", ");
  return { kind: "empty", reason: `no generation of ${tried} yet` };
}

/** The number a new generation of a key takes: one past the highest present (complete or claimed). */
export function nextGeneration(present: number[]): number {
  return present.length ? Math.max(...present) + 1 : 1;
}
