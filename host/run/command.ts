// `dinv run CMD`: the command that runs once dockerd is ready, with DOCKER_HOST (and the TLS
// variables) set; its exit code becomes the launcher's.

import { spawn } from "node:child_process";
import type { Logger } from "../log.js";

export interface DockerTarget {
  dockerHost: string;
  /** DOCKER_CERT_PATH when the API requires TLS */
  dockerCertPath?: string | undefined;
}

/** The variables a docker client needs to reach the guest's dockerd through the forward. Pure. */
export function dockerClientEnv(target: DockerTarget): Record<string, string> {
  return target.dockerCertPath ? { DOCKER_HOST: target.dockerHost, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: target.dockerCertPath } : { DOCKER_HOST: target.dockerHost };
}

/** The same, as KEY=VALUE lines for the image's docker wrapper (image/docker-client reads them). */
export const dockerClientEnvFile = (target: DockerTarget) => Object.entries(dockerClientEnv(target)).map(([k, v]) => `${k}=${v}\n`).join("");

/** Start argv; `done` gets its exit code (127: it could not start) and why, once. */
export function runCommand(argv: string[], target: DockerTarget, log: Logger, done: (code: number, why: string) => void): void {
  log.info({ command: argv }, "running the command");
  const child = spawn(argv[0]!, argv.slice(1), { stdio: "inherit", env: { ...process.env, ...dockerClientEnv(target) } });
  let reported = false;
  const report = (code: number, why: string) => {
    if (reported) return;
    reported = true;
    done(code, why);
  };
  child.on("error", (err) => {
    log.error(`cannot run ${argv[0]}: ${err.message}`);
    report(127, "the command could not start");
  });
  child.on("exit", (code, signal) => report(code ?? (signal ? 128 : 1), `the command exited with ${code ?? signal}`));
}
