// What a run serves on its own side: the agent channel QEMU connects to, the control API (`dinv
// status`, `wait`, `stop`, `health`) and the docker socket that proxies to the guest's dockerd.

import { chmod, rm, writeFile } from "node:fs/promises";
import { listenAgent } from "../guest-link/channel.js";
import type { GuestSession } from "../guest-link/session.js";
import type { HostConfig } from "../config/env.js";
import { startControlServer, type ControlHandlers } from "../control/server.js";
import type { LauncherState } from "../control/state.js";
import { reachableAddress } from "../net/forwards.js";
import { pingDocker, type DockerEndpoint } from "../proxy/docker-endpoint.js";
import { serveDockerSocket } from "../proxy/docker-socket.js";
import type { TlsMaterial } from "../tls/certs.js";
import { dockerClientEnvFile } from "./command.js";
import { RUN_FILES, runPath } from "./run-files.js";

export interface RunEndpoints {
  /** close them all */
  close(): Promise<void>;
}

export async function openEndpoints(o: {
  config: HostConfig;
  state: LauncherState;
  session: GuestSession;
  tls: TlsMaterial | undefined;
  /** a stop asked for through the control API */
  stop: (timeoutSeconds: number | undefined) => void;
  /** `dinv cache save` through the control API */
  cacheSave: ControlHandlers["cacheSave"];
}): Promise<RunEndpoints> {
  const { config, state, session, tls } = o;
  const run = (name: string) => runPath(config.runDir, name);
  const dockerTarget: DockerEndpoint = {
    host: reachableAddress(config.bindAddr),
    port: config.dockerPort,
    ...(tls ? { tls: { caPem: tls.caPem, certPem: tls.client.certPem, keyPem: tls.client.keyPem } } : {}),
  };
  const agentServer = await listenAgent(run(RUN_FILES.agentSocket), (t) => session.attach(t));
  const control = await startControlServer(run(RUN_FILES.controlSocket), state, {
    stop: o.stop,
    cacheSave: o.cacheSave,
    health: () => (state.phase === "ready" ? pingDocker(dockerTarget) : Promise.resolve({ healthy: false, reason: `dinv is ${state.phase}` })),
  }, {
    ...(config.control.gid !== undefined ? { gid: config.control.gid } : {}),
    ...(config.control.tcpPort !== undefined ? { tcpPort: config.control.tcpPort, tokenFile: run(RUN_FILES.controlToken) } : {}),
  });
  const dockerSock = config.dockerSockPath ? await serveDockerSocket(config.dockerSockPath, dockerTarget, config.dockerSock) : undefined;
  // How a docker client beside the launcher reaches dockerd (the image's docker wrapper reads it):
  // the launcher's own choice of port and TLS, written once, not worked out again in shell.
  await writeFile(run(RUN_FILES.dockerClientEnv), dockerClientEnvFile(state.snapshot()), { mode: 0o644 });
  // Readable by a non-root `docker exec -u` too, whatever the launcher's umask.
  await chmod(run(RUN_FILES.dockerClientEnv), 0o644);
  return {
    async close() {
      await rm(run(RUN_FILES.dockerClientEnv), { force: true });
      await agentServer.close();
      await dockerSock?.close();
      await control.close();
    },
  };
}
