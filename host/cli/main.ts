// The `dinv` command line. `dinv run` is the launcher; it takes its configuration only from
// the environment, as the container entrypoint does.

import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ALLOWED, ConfigError, parseLogEnv } from "../config/env.js";
import { runLauncher } from "../run/start.js";
import { createLogger } from "../log.js";
import { describeFailure, HELP, runClientCommand } from "./commands.js";
import { printVersion, versionReport } from "./version.js";
import { WARM_HELP, warmSave, warmStatus } from "./warm.js";
import { CACHE_HELP, cacheCommand } from "./cache.js";

declare const DINV_VERSION: string;
const VERSION = typeof DINV_VERSION === "string" ? DINV_VERSION : "dev";

const USAGE = `dinv ${VERSION}: Docker containers in a microVM, in a Docker container

Usage: dinv <command> [options]

Commands:
  run        boot the VM and run until SIGINT/SIGTERM (configuration from DINV_* variables)
  status     print the state of a running dinv (--json for the snapshot)
  wait       block until dockerd in the guest is ready (--timeout S)
  events     stream state changes (--json: one object a line)
  stop       stop gracefully, as SIGTERM (--timeout S)
  health     exit 0 only when dockerd in the guest answers (for HEALTHCHECK)
  warm       save a ready VM for warm starts, or show the saved ones (warm save | warm status)
  cache      the shared docker-disk cache: save this run's disk now, list or prune (cache save | list | prune)
  version    print the versions of dinv, the guest's Docker stack and the image's tools (--json)
  help       this text (also: dinv <command> --help)
`;

const RUN_HELP = `Usage: dinv run [--] [COMMAND ARGS...]

Boots the guest and serves the docker API until SIGINT, SIGTERM or \`dinv stop\`, then stops dockerd
in the guest, unmounts its disks and exits 0. With COMMAND: runs it once dockerd is ready (DOCKER_HOST
set), then stops the same way and exits with COMMAND's exit code. Exit codes: 0 clean stop, 1 failure, 2 bad configuration,
3 stopped without a confirmed clean guest shutdown.

Environment:
${Object.entries(ALLOWED).map(([k, v]) => `  ${k.padEnd(22)} ${v}`).join("\n")}
`;

/** Where the guest kernel and images are when DINV_GUEST_DIR is unset: the image's path, else the build output. */
function defaultGuestDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = ["/usr/lib/dinv/guest", resolve(here, "../build/guest"), resolve(here, "../../../build/guest")];
  // The image ships the compressed kernel only (the launcher extracts vmlinux at start).
  return candidates.find((dir) => existsSync(`${dir}/vmlinux`) || existsSync(`${dir}/vmlinuz`)) ?? resolve(here, "../build/guest");
}

/** The logger from DINV_LOG_LEVEL / DINV_LOG_FORMAT; undefined (the problem printed) when they are bad. */
function loggerOrExplain(command: string): ReturnType<typeof createLogger> | undefined {
  try {
    return createLogger(parseLogEnv(process.env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${command}: ${err.message}\n`);
    return undefined;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes("--help") || rest.includes("-h");
  switch (command) {
    case "run": {
      // Only a first --help is ours: later ones belong to COMMAND (dinv run docker build --help).
      if (rest[0] === "--help" || rest[0] === "-h") {
        process.stdout.write(RUN_HELP);
        return 0;
      }
      // `dinv run [--] CMD ARGS...`: run CMD once dockerd is ready, then stop (the original DinV's
      // entrypoint ran its arguments the same way); without CMD, run until stopped.
      const command = rest[0] === "--" ? rest.slice(1) : rest;
      const log = loggerOrExplain("dinv run");
      if (!log) return 2;
      return runLauncher({ env: process.env, log, defaultGuestDir: defaultGuestDir(), command });
    }
    case "status":
    case "wait":
    case "events":
    case "stop":
    case "health": {
      if (wantsHelp) {
        process.stdout.write(HELP[command]!);
        return 0;
      }
      try {
        return await runClientCommand(command, rest, process.env, process.stdout, process.stderr);
      } catch (error) {
        const failure = describeFailure(error);
        process.stderr.write(`dinv ${command}: ${failure.message}\n`);
        return failure.code;
      }
    }
    case "warm": {
      const sub = rest[0];
      if (wantsHelp || (sub !== "save" && sub !== "status")) {
        process[wantsHelp ? "stdout" : "stderr"].write(WARM_HELP);
        return wantsHelp ? 0 : 2;
      }
      const log = loggerOrExplain("dinv warm");
      if (!log) return 2;
      if (sub === "save") return warmSave(process.env, log, defaultGuestDir(), rest[1] === "--" ? rest.slice(2) : rest.slice(1));
      return warmStatus(process.env, log, defaultGuestDir(), rest.includes("--json"), process.stdout);
    }
    case "cache": {
      if (wantsHelp || !rest[0]) {
        process[wantsHelp ? "stdout" : "stderr"].write(CACHE_HELP);
        return wantsHelp ? 0 : 2;
      }
      if (rest[0] === "warm") {
        const log = loggerOrExplain("dinv cache warm");
        if (!log) return 2;
        if (!process.env.DINV_CACHE_DIR) {
          log.error("dinv cache warm: DINV_CACHE_DIR is not set");
          return 2;
        }
        return warmSave(process.env, log, defaultGuestDir(), rest[1] === "--" ? rest.slice(2) : rest.slice(1));
      }
      try {
        return await cacheCommand(rest[0], rest.slice(1), process.env, process.stdout, process.stderr);
      } catch (error) {
        const failure = describeFailure(error);
        process.stderr.write(`dinv cache: ${failure.message}\n`);
        return failure.code;
      }
    }
    case "version":
    case "--version":
      if (wantsHelp) {
        process.stdout.write("Usage: dinv version [--json]\n\nPrints dinv's version and what its build installed: the guest's dockerd, containerd, runc,\nkernel and Node; in the image also its docker CLI, buildx, compose, QEMU, virtiofsd, passt and Node.\n");
        return 0;
      }
      return printVersion(versionReport(VERSION, defaultGuestDir()), rest.includes("--json"), process.stdout, process.stderr);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`dinv: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`dinv: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
