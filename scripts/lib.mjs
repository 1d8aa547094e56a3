// Shared steps of npm start / build / test: only Node built-ins here, since they run before
// `npm ci` may have installed anything.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export function sh(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit", ...options });
  if (result.status !== 0) {
    console.error(`\n${cmd} ${args.join(" ")} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

/** Debian packages (root only; a non-root user is told what is missing). */
export function installSystemDeps() {
  sh("bash", ["scripts/install-deps.sh"]);
}

/** npm packages, when node_modules is missing or older than the lock file. */
export function installNodeDeps() {
  const stamp = join(ROOT, "node_modules/.package-lock.json");
  const lock = join(ROOT, "package-lock.json");
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs) return;
  sh("npm", ["ci", "--no-audit", "--no-fund"]);
}

/** Bundles, then the guest OS (skipped inside when its recipe did not change). */
export function build() {
  sh(process.execPath, ["scripts/bundle.mjs"]);
  sh("bash", ["alpine/build.sh", "dist/dinv-agent.js", "build/guest"]);
  // The guest Docker's own clients for the tests and benchmarks (this machine's CLI is older).
  sh("bash", ["scripts/clients.sh", "build/clients", "build/cache"]);
  const manifest = JSON.parse(readFileSync(join(ROOT, "build/guest/manifest.json"), "utf8"));
  return manifest;
}

export function prepare() {
  installSystemDeps();
  installNodeDeps();
  return build();
}
