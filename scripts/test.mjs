// npm test: install and build what is missing, then every suite: unit (no VM), VM (boots
// guests under TCG/KVM), and the container end-to-end suite when it exists.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { prepare, ROOT } from "./lib.mjs";

const started = Date.now();
// Each test's own bound: a hung await fails its test instead of holding CI (ms).
const suites = [
  ["unit", "test/unit", ["--test-timeout=120000"]],
  ["vm", "test/vm", ["--test-concurrency=1", "--test-timeout=900000"]],
  ["e2e", "test/e2e", ["--test-concurrency=1", "--test-timeout=1200000"]],
];
const only = process.argv.slice(2);
const unknown = only.filter((name) => !suites.some(([s]) => s === name));
if (unknown.length) {
  console.error(`npm test: no suite named ${unknown.join(", ")}; the suites are ${suites.map(([s]) => s).join(", ")}`);
  process.exit(2);
}
prepare();
const results = [];
const reports = mkdtempSync(join(tmpdir(), "dinv-test-"));
/** Tests run and skipped, from a suite's TAP report. */
function counts(file) {
  const tap = existsSync(file) ? readFileSync(file, "utf8") : "";
  const top = tap.split("\n").filter((l) => /^(not )?ok \d+ /.test(l));
  return { tests: top.length, skippedTests: top.filter((l) => /# SKIP\b/i.test(l)).length };
}
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
  if (files.length === 0) {
    results.push({ name, ok: true, skipped: `no test files in ${dir}`, seconds: 0 });
    continue;
  }
  console.log(`\n=== ${name} suite (${files.length} files) ===`);
  const t0 = Date.now();
  const tap = join(reports, `${name}.tap`);
  const reporters = ["--test-reporter=spec", "--test-reporter-destination=stdout", "--test-reporter=tap", `--test-reporter-destination=${tap}`];
  const run = spawnSync(process.execPath, ["--import", "tsx", "--test", ...reporters, ...extra, ...files], { cwd: ROOT, stdio: "inherit" });
  const c = counts(tap);
  results.push({ name, ok: run.status === 0, seconds: Math.round((Date.now() - t0) / 1000), ...c, ...(c.tests > 0 && c.skippedTests === c.tests ? { skipped: `all ${c.tests} tests skipped` } : {}) });
}
console.log("\n=== summary ===");
for (const r of results) {
  const verdict = !r.ok ? "FAILED" : r.skipped ? "SKIPPED" : "ok";
  const detail = r.skipped ?? (r.tests !== undefined ? `${r.tests} tests, ${r.skippedTests} skipped` : "");
  console.log(`${r.name.padEnd(5)} ${verdict.padEnd(7)} ${String(r.seconds).padStart(5)} s  ${detail}`.trimEnd());
}
console.log(`total ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
