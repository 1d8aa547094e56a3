// A docker.sock on the launcher's side (in the container image: /var/run/docker.sock) for tools
// that want a socket: each connection is piped to the docker API forward (through TLS with the
// client certificate when the API requires it; the socket's owner and mode guard access).

import { createServer, type Server } from "node:net";
import { chmod, chown } from "node:fs/promises";
import { removeStaleSocket } from "../guest-link/channel.js";
import { connectDocker, type DockerEndpoint } from "./docker-endpoint.js";

export async function serveDockerSocket(path: string, target: DockerEndpoint, owner: { uid: number; gid: number }): Promise<Server> {
  await removeStaleSocket(path);
  const server = createServer((client) => {
    const upstream = connectDocker(target);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o660);
  await chown(path, owner.uid, owner.gid);
  return server;
}
