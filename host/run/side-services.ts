// The processes and files a guest needs besides QEMU, prepared before the first boot: virtiofsd
// per share (DINV_MOUNTS over virtio-fs), passt (DINV_NET=passt), and the TLS material. Each
// fast path falls back (9p, SLIRP) with a log line when it cannot run here.

import { access, constants } from "node:fs/promises";
import { hostname, networkInterfaces } from "node:os";
import { delimiter, join } from "node:path";
import type { HostConfig } from "../config/env.js";
import { shareTag } from "../guest-config.js";
import type { Logger } from "../log.js";
import { forwardsOf } from "../net/forwards.js";
import { Passt, PasstError } from "../net/passt.js";
import { RUN_FILES } from "./run-files.js";
import type { ShareFsChoice } from "../share/choose.js";
import { VirtiofsdError, VirtiofsdSet } from "../share/virtiofsd.js";
import { ensureTlsMaterial, serverSans, TlsError, type TlsMaterial } from "../tls/certs.js";
import { ok, refused, type Result } from "../../shared/result.js";

export interface SideServices {
  shareFs: "9p" | "virtiofs";
  /** the guest network for the QEMU plan */
  net: { kind: "slirp" } | { kind: "passt"; socket: string };
  tls?: TlsMaterial;
  /** (re)start what serves one QEMU only, before each boot attempt */
  beforeStart(): Promise<void>;
  stop(): Promise<void>;
}

/** First executable `name` on PATH, if any. */
async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    const candidate = join(dir, name);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/** Start the side services; a string is an error for the user (nothing is left running then). */
export async function startSideServices(
  config: HostConfig,
  shareChoice: ShareFsChoice,
  paths: { run: (name: string) => string; virtiofsSockets: string[] },
  log: Logger,
): Promise<Result<SideServices>> {
  const { run } = paths;
  let virtiofsd: VirtiofsdSet | undefined;
  let shareFs: "9p" | "virtiofs" = "9p";
  if (shareChoice.fs === "virtiofs") {
    virtiofsd = new VirtiofsdSet(shareChoice.binary, shareChoice.flavour, config.mounts.map((path, i) => ({ tag: shareTag(i), path, socket: paths.virtiofsSockets[i]! })), log);
    try {
      await virtiofsd.ensureRunning();
      shareFs = "virtiofs";
      log.info(`DINV_MOUNTS use virtio-fs (${config.mounts.length} virtiofsd)`);
    } catch (err) {
      await virtiofsd.stop();
      virtiofsd = undefined;
      if (!(err instanceof VirtiofsdError)) throw err;
      if (config.mountsFs === "virtiofs") return refused(`DINV_MOUNTS_FS=virtiofs: ${err.message}`);
      log.warn(`DINV_MOUNTS use 9p, not virtio-fs: ${err.message}`);
    }
  }

  let passt: Passt | undefined;
  if (config.net === "passt") {
    const binary = await onPath("passt");
    if (!binary) log.warn("DINV_NET=passt but passt is not installed (apt-get install passt): using SLIRP");
    else {
      passt = new Passt(binary, { socket: run(RUN_FILES.passtSocket), pidFile: run(RUN_FILES.passtPid), logFile: run(RUN_FILES.passtLog) }, forwardsOf(config), log);
      try {
        await passt.ensureRunning();
        log.info("the guest network and port forwards use passt");
      } catch (err) {
        await passt.stop();
        passt = undefined;
        if (!(err instanceof PasstError)) throw err;
        // In a container, Docker's default seccomp profile refuses the namespaces passt sandboxes itself in.
        log.warn(`DINV_NET=passt: ${err.message}; using SLIRP (in a container passt needs namespaces, which Docker's default seccomp profile refuses)`);
      }
    }
  }

  let tls: TlsMaterial | undefined;
  if (config.tls) {
    try {
      const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === "IPv4").map((a) => a.address));
      tls = await ensureTlsMaterial(config.tls.certDir, { sans: serverSans(hostname(), [config.bindAddr, ...addresses]), clientOwner: config.dockerSock });
      log.info(`docker API requires TLS on port ${config.dockerPort}; client certificates in ${tls.clientDir}`);
    } catch (err) {
      await virtiofsd?.stop();
      await passt?.stop();
      if (!(err instanceof TlsError)) throw err;
      return refused(err.message);
    }
  }

  return ok({
    shareFs,
    net: passt ? { kind: "passt", socket: run(RUN_FILES.passtSocket) } : { kind: "slirp" },
    ...(tls ? { tls } : {}),
    // virtiofsd and passt each serve one QEMU: a retried boot needs fresh ones.
    beforeStart: async () => {
      await virtiofsd?.ensureRunning();
      await passt?.ensureRunning();
    },
    stop: async () => {
      await virtiofsd?.stop();
      await passt?.stop();
    },
  });
}
