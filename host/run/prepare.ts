// Before any side effect: the configuration parsed, the machine probed, the accelerator and the
// mount transport chosen, and the warnings a user must see said once. Nothing is created here.

import { ConfigError, parseEnv, type HostConfig } from "../config/env.js";
import type { Logger } from "../log.js";
import { preflight, type Preflight } from "../preflight.js";
import { chooseAccel, type AccelChoice, type KvmProbe } from "../qemu/accel.js";
import { chooseShareFs, type ShareFsChoice } from "../share/choose.js";

export interface Prepared {
  config: HostConfig;
  pre: Preflight;
  choice: Exclude<AccelChoice, { accel: "error" }>;
  shareChoice: Exclude<ShareFsChoice, { fs: "error" }>;
}

/** The prepared facts, or a refusal (every problem at once, in words a user can act on). */
export async function prepareLaunch(env: Record<string, string | undefined>, guestDir: string, qemuBinary: string, log: Logger, kvmProbe?: KvmProbe): Promise<Prepared | { refused: string }> {
  let config: HostConfig;
  try {
    config = parseEnv(env, { guestDir });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { refused: err.message };
  }
  const pre = await preflight(config, qemuBinary, kvmProbe);
  const choice = chooseAccel(config.accel, pre.kvm);
  if (choice.accel === "error") pre.problems.push(choice.message);
  const shareChoice = chooseShareFs(config.mountsFs, config.mounts.length, pre.virtiofs);
  if (shareChoice.fs === "error") pre.problems.push(shareChoice.message);
  if (pre.problems.length > 0 || choice.accel === "error" || shareChoice.fs === "error") {
    return { refused: `cannot start:\n${pre.problems.map((p) => `  - ${p}`).join("\n")}` };
  }
  if (choice.accel === "tcg" && choice.warning) log.warn(`WARNING: ${choice.warning}`);
  if (!config.tls && config.bindAddr === "0.0.0.0") {
    log.warn(
      `WARNING: the docker API is served without TLS on 0.0.0.0:${config.dockerPort}: anything that reaches this port controls the guest's dockerd. ` +
        "Turn on TLS with DOCKER_TLS_CERTDIR=/certs, or serve it on loopback only with DINV_BIND_ADDR=127.0.0.1 (docker exec dinv docker ... needs no port)",
    );
  }
  if (shareChoice.warning) log.warn(shareChoice.warning);
  return { config, pre, choice, shareChoice };
}
