// The docker CLI of the guest's Docker version with its buildx and compose plugins, unpacked by
// scripts/clients.sh (this machine's own CLI may lack buildx).

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./dinv-process.js";

export const CLIENT_DOCKER = join(REPO, "build/clients/bin/docker");
export const CLIENT_DOCKER_CONFIG = join(REPO, "build/clients/docker-config");

/** Run that CLI against DOCKER_HOST=host, with its plugins. */
export function clientDocker(host: string, args: string[], options: { input?: Buffer; timeoutMs?: number; cwd?: string } = {}): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(CLIENT_DOCKER, args, {
    env: { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: CLIENT_DOCKER_CONFIG },
    input: options.input,
    cwd: options.cwd,
    timeout: options.timeoutMs ?? 300_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: result.status ?? -1, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? "") };
}
