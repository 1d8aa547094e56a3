// The docker API as the launcher reaches it through its own forward: plain TCP, or TLS with the
// client certificate when DOCKER_TLS_CERTDIR is set. Used by the health check and docker.sock.

import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createConnection, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

export interface DockerEndpoint {
  host: string;
  port: number;
  /** client material for a --tlsverify dockerd; absent for the plain API */
  tls?: { caPem: string; certPem: string; keyPem: string };
}

/** A byte stream to the docker API; TLS is terminated here so the caller speaks plain HTTP. */
export function connectDocker(endpoint: DockerEndpoint): Socket {
  if (!endpoint.tls) return createConnection(endpoint.port, endpoint.host);
  const { caPem, certPem, keyPem } = endpoint.tls;
  return tlsConnect({ host: endpoint.host, port: endpoint.port, ca: caPem, cert: certPem, key: keyPem, servername: "localhost" });
}

/** Healthy when dockerd answers GET /_ping with 200 OK through the forward within 3 s. */
export function pingDocker(endpoint: DockerEndpoint): Promise<{ healthy: boolean; reason: string }> {
  return new Promise((resolve) => {
    const options = { host: endpoint.host, port: endpoint.port, path: "/_ping", timeout: 3000 };
    const onResponse = (res: import("node:http").IncomingMessage) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () =>
        resolve(res.statusCode === 200 && body === "OK" ? { healthy: true, reason: "dockerd answers /_ping" } : { healthy: false, reason: `dockerd answered ${res.statusCode}` }),
      );
    };
    const req = endpoint.tls
      ? httpsRequest({ ...options, ca: endpoint.tls.caPem, cert: endpoint.tls.certPem, key: endpoint.tls.keyPem, servername: "localhost" }, onResponse)
      : httpRequest(options, onResponse);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ healthy: false, reason: `dockerd does not answer through the forward: ${err.message}` }));
    req.end();
  });
}
