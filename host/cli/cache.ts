// dinv cache save | list | prune: the shared docker-disk cache (DINV_CACHE_DIR). `save` asks the
// running launcher (control API) and returns once the generation is safe on disk; `list` and
// `prune` read the directory itself, as any runner sharing it may.

import { ConfigError, parseCacheEnv } from "../config/env.js";
import { formatSize } from "../config/size.js";
import { collect, KEEP_PER_KEY } from "../cache/collect.js";
import { CacheStore } from "../cache/store.js";
import { ControlClient } from "../control/client.js";
import { CLI_EXIT, controlSocket, UsageError } from "./commands.js";

export const CACHE_HELP = `Usage: dinv cache save | warm [-- COMMAND ARGS...] | list [--json] | prune [--json]

  save    promote this run's docker disk to its key's next generation now (DINV_CACHE_KEY); returns once
          it is safe on disk. From a job: docker volume create -d dinv-cache save
  warm    boot a VM on the key's newest generation (DINV_CACHE_KEY, DINV_CACHE_RESTORE_KEYS), run COMMAND if given,
          save its ready state into DINV_WARM_DIR: later jobs on that generation restore it (dinv warm save, on the cache)
  list    the keys in DINV_CACHE_DIR, their generations and sizes
  prune   remove what the bounds say (${KEEP_PER_KEY} generations a key, DINV_CACHE_MAX), never a generation in use

Exit codes: 0 done, 1 the save failed, 2 bad arguments or configuration, 3 no launcher answers.
`;

type Out = { write(text: string): void };

/** Half an hour: a promotion of a large generation under TCG takes minutes, never this long. */
const SAVE_TIMEOUT_MS = 30 * 60_000;

export async function cacheCommand(sub: string | undefined, args: string[], env: Record<string, string | undefined>, out: Out, err: Out): Promise<number> {
  const json = args.includes("--json");
  const unknown = args.find((a) => a !== "--json");
  if (unknown) throw new UsageError(`unknown option ${unknown}`);
  if (sub === "save") {
    const client = await ControlClient.connect(controlSocket(env));
    const reply = await client.request({ type: "cache-save" }, SAVE_TIMEOUT_MS).finally(() => client.close());
    if (json) out.write(`${JSON.stringify(reply)}\n`);
    else (reply.ok ? out : err).write(`${reply.ok ? "" : "dinv cache save: "}${reply.message}\n`);
    return reply.ok ? CLI_EXIT.ok : CLI_EXIT.notReady;
  }
  let cache: ReturnType<typeof parseCacheEnv>;
  try {
    cache = parseCacheEnv(env);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.problems.join("; "));
    throw e;
  }
  if (!cache) throw new UsageError("DINV_CACHE_DIR is not set");
  const store = await CacheStore.open(cache.dir);
  try {
    if (sub === "list") {
      const keys = await store.list((what) => err.write(`skipped ${what}\n`));
      if (json) {
        out.write(`${JSON.stringify({ dir: cache.dir, keys: keys.map((k) => ({ key: k.key, usedAtMs: k.usedAtMs, generations: k.generations.map((g) => ({ generation: g.generation, ...g.meta })) })) })}\n`);
        return CLI_EXIT.ok;
      }
      out.write(`DINV_CACHE_DIR ${cache.dir}\n`);
      for (const k of keys) {
        out.write(`  ${k.key} (used ${new Date(k.usedAtMs).toISOString()})\n`);
        for (const g of k.generations) out.write(`    generation ${g.generation}: ${formatSize(g.meta.bytes)}, made ${new Date(g.meta.createdAtMs).toISOString()}${g.meta.from ? ` from ${g.meta.from.key} generation ${g.meta.from.generation}` : ""}\n`);
      }
      if (!keys.length) out.write("  no keys\n");
      return CLI_EXIT.ok;
    }
    if (sub === "prune") {
      const removed = await collect(store, { maxBytes: cache.maxBytes });
      if (json) out.write(`${JSON.stringify({ removed })}\n`);
      else out.write(removed.length ? removed.map((r) => `removed ${r.key} generation ${r.generation} (${formatSize(r.bytes)}): ${r.why}\n`).join("") : "nothing to remove\n");
      return CLI_EXIT.ok;
    }
  } finally {
    await store.close();
  }
  throw new UsageError(`unknown cache command ${JSON.stringify(sub ?? "")}`);
}
