// npm test: install and build what is missing, then every suite: unit (no VM), VM (boots
// guests under TCG/KVM), and the container end-to-end suite when it exists.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { prepare, ROOT } from "./lib.mjs";

const started = Date.now();
prepare();
const suites = [
  ["unit", "test/unit", []],
  ["vm", "test/vm", ["--test-concurrency=1"]],
  ["e2e", "test/e2e", ["--test-concurrency=1"]],
];
const only = process.argv.slice(2);
const results = [];
// Type errors fail the run: tsx strips types, so the suites alone would never see them.
if (!only.length || only.includes("unit")) {
  const t0 = Date.now();
  console.log("\n=== typecheck (tsc --noEmit) ===");
  const tsc = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", ROOT], { cwd: ROOT, stdio: "inherit" });
  results.push({ name: "types", ok: tsc.status === 0, seconds: Math.round((Date.now() - t0) / 1000) });
}
for (const [name, dir, extra] of suites) {
  if (only.length && !only.includes(name)) continue;
  const abs = join(ROOT, dir);
  const files = existsSync(abs) ? readdirSync(abs).filter((f) => f.endsWith(".test.ts")).map((f) => join(dir, f)) : [];
  if (files.length === 0) continue;
  console.log(`\n=== ${name} suite (${files.length} files) ===`);
  const t0 = Date.now();
  const run = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...extra, ...files], { cwd: ROOT, stdio: "inherit" });
  results.push({ name, ok: run.status === 0, seconds: Math.round((Date.now() - t0) / 1000) });
}
console.log("\n=== summary ===");
for (const r of results) console.log(`${r.name.padEnd(5)} ${r.ok ? "ok    " : "FAILED"} ${r.seconds} s`);
console.log(`total ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
