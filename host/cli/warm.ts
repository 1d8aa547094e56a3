// `dinv warm save` and `dinv warm status`: the warm-start store made visible.

import { mkdir, mkdtemp, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, dirVariable } from "../config/env.js";
import { dockerDiskPath } from "../run/run-files.js";
import { guestConfigFor } from "../guest-config.js";
import { runLauncher } from "../run/start.js";
import type { Logger } from "../log.js";
import { prepareLaunch } from "../run/prepare.js";
import { warmPlanForRun } from "../warm/plan.js";
import { listStates } from "../warm/store.js";

export const WARM_HELP = `Usage: dinv warm save [-- COMMAND ARGS...] | status [--json]

  save     boot a VM on a fresh docker disk of its own, run COMMAND if given (DOCKER_HOST set: docker
           pull, load or build what every job needs), save its ready state into DINV_WARM_DIR
           (created if missing), stop; later runs of the same shape (DINV_CPUS, DINV_MEMORY, ...)
           with no docker disk yet restore it, images included, instead of booting
  status   list the saved states and whether one fits this configuration (the DINV_* variables)

A warm start applies with DINV_WARM_START=auto (the default) when DINV_WARM_DIR exists, the docker
disk does not exist yet, and DINV_MOUNTS, DINV_VOLUME_PATH, DOCKER_TLS_CERTDIR and DINV_NET=passt
are unset. DINV_WARM_START=off turns it off.
`;

type Out = { write: (s: string) => unknown };

export async function warmSave(env: Record<string, string | undefined>, log: Logger, guestDir: string, command: string[]): Promise<number> {
  // Checked before anything is created: a relative path would make a directory wherever this runs.
  let warmDir: string;
  try {
    warmDir = dirVariable(env, "DINV_WARM_DIR");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.error(`dinv warm save: ${err.problems.join("; ")}`);
    return 2;
  }
  try {
    await mkdir(warmDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    log.error(`dinv warm save: cannot create DINV_WARM_DIR=${JSON.stringify(warmDir)}: ${(err as Error).message}`);
    return 2;
  }
  const scratch = await mkdtemp(join(tmpdir(), "dinv-warm-"));
  const dockerDir = join(scratch, "docker");
  try {
    // A VM of its own: its own disk and run directory, no forwards, sockets or published ports
    // that could meet a running dinv's.
    return await runLauncher({
      env: { ...env, DINV_DOCKER_DIR: dockerDir, DINV_RUN_DIR: join(scratch, "run"), DINV_TCP_PORTS: "", DINV_UDP_PORTS: "", DINV_CONTROL_PORT: "", DINV_DOCKER_SOCK: "", DINV_PUBLISH: "off" },
      log,
      defaultGuestDir: guestDir,
      warmSaveOnly: true,
      command,
    });
  } finally {
    // Only what this command created: the scratch docker disk (its copy is in the store) and its directories.
    await rm(dockerDiskPath({ dockerDir }), { force: true });
    await rmdir(dockerDir).catch(() => undefined);
    await rmdir(join(scratch, "run")).catch(() => undefined);
    await rmdir(scratch).catch(() => undefined);
  }
}

export async function warmStatus(env: Record<string, string | undefined>, log: Logger, guestDir: string, json: boolean, out: Out): Promise<number> {
  const prepared = await prepareLaunch(env, guestDir, "qemu-system-x86_64", log);
  if ("refused" in prepared) {
    out.write(`${prepared.refused}\n`);
    return 2;
  }
  const { config, pre, choice } = prepared;
  const plan = await warmPlanForRun({
    config,
    guest: guestConfigFor(config, undefined, "9p", config.net),
    accel: choice.accel === "kvm" ? "kvm" : "tcg",
    qemu: pre.qemu!,
    ...(pre.tscKhz ? { tscKhz: pre.tscKhz } : {}),
    guestFiles: [pre.guest.kernel, pre.guest.initrd, pre.guest.rootImage],
    dockerDiskExists: false,
  });
  const states = (await listStates(config.warm.dir)).map((s) => ({ dir: s.dir, fits: plan.kind === "restore" && plan.dir === s.dir, ...s.meta }));
  const verdict = plan.kind !== "restore"
    ? `a fresh run boots cold: ${plan.reason}`
    : `a fresh run restores ${plan.dir}${plan.reconfigure ? " and restarts dockerd with this configuration (warm, reconfigured: only dockerd's configuration differs)" : ""}`;
  if (json) {
    out.write(`${JSON.stringify({ warmDir: config.warm.dir, mode: config.warm.mode, verdict, shape: plan.shape, states })}\n`);
    return 0;
  }
  out.write(`DINV_WARM_DIR ${config.warm.dir} (DINV_WARM_START=${config.warm.mode})\n${verdict}\n`);
  for (const s of states) {
    out.write(`  ${s.fits ? "*" : " "} ${s.dir}: saved ${s.savedAt}, ${s.shape.accel}, ${s.shape.cpus} vCPU, ${Math.round(s.shape.memoryBytes / 2 ** 20)} MiB, dockerd ${s.dockerVersion ?? "?"}; state ${Math.round(s.state.bytes / 2 ** 20)} MiB, disk ${Math.round(s.disk.bytes / 2 ** 20)} MiB; ${s.mapped ? "a RAM file restores map (QEMU 8.2 and later)" : "no RAM file: restores read the stream"}\n`);
  }
  if (!states.length) out.write("  no saved states\n");
  return 0;
}
