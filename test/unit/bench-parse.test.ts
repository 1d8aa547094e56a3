import { test } from "node:test";
import assert from "node:assert/strict";
import { medianPerPhase } from "../../bench/mounts.js";

test("mount workload: median per phase over the passes", () => {
  const out = "small_files_write 9000\nstat_tree 200\nsmall_files_write 5000\nstat_tree 100\nsmall_files_write 6000\nstat_tree 300\n";
  assert.deepEqual(medianPerPhase(out), { small_files_write: 6000, stat_tree: 200 });
});

test("mount workload: a line that is not 'phase ms' is an error, not a NaN in the table", () => {
  assert.throws(() => medianPerPhase("small_files_write 10\nsh: tar: not found\n"), /unexpected workload line/);
  assert.throws(() => medianPerPhase("small_files_write\n"), /unexpected workload line/);
});
