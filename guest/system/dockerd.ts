// dockerd in the guest: configuration, start, readiness probe over its unix socket, stop.

import { request } from "node:http";
import { watch, type FSWatcher } from "node:fs";
import { access, chown, mkdir, writeFile } from "node:fs/promises";
import { execa, type ResultPromise } from "execa";
import { GUEST_DOCKER_ROOT } from "../../shared/constants.js";
import type { DockerdSpec } from "../../shared/protocol/guest-config.js";
import type { LogSink } from "./types.js";
import { GuestStepError } from "./types.js";

export const DOCKER_SOCKET = "/var/run/docker.sock";
const DAEMON_JSON = "/etc/docker/daemon.json";
/** Where the server's TLS files go: /etc is the RAM-backed overlay, gone at power-off. */
export const TLS_DIR = "/etc/docker/tls";

/**
 * Networks `docker network create` takes in the guest: outside the host's usual 172.17.0.0/16 and
 * the default bridge 172.19.0.0/16, so user-defined networks collide with neither.
 */
export const DEFAULT_ADDRESS_POOLS = [{ base: "172.24.0.0/13", size: 24 }];

/** Socket of the containerd the guest init starts early (see alpine/rootfs/usr/lib/dinv/prep). */
export const EARLY_CONTAINERD = "/run/containerd/containerd.sock";

/**
 * daemon.json: dinv's defaults, the user's keys over them, dinv's own on top (hosts and bridge
 * stay dinv's). With `containerd`, dockerd uses that one instead of starting its own. Pure.
 */
export function daemonConfig(spec: DockerdSpec, containerd?: string): Record<string, unknown> {
  return {
    "default-address-pools": DEFAULT_ADDRESS_POOLS,
    ...spec.daemonConfig,
    ...(containerd ? { containerd } : {}),
    hosts: [`unix://${DOCKER_SOCKET}`, `tcp://0.0.0.0:${spec.tcpPort}`],
    // Explicit tls=false when plain: dockerd 20.10 otherwise sleeps 15 s to warn about a plain TCP socket.
    ...(spec.tls
      ? { tls: true, tlsverify: true, tlscacert: `${TLS_DIR}/ca.pem`, tlscert: `${TLS_DIR}/cert.pem`, tlskey: `${TLS_DIR}/key.pem` }
      : { tls: false }),
    bip: spec.bip,
    "shutdown-timeout": spec.shutdownTimeoutSeconds,
    "data-root": GUEST_DOCKER_ROOT,
  };
}

/**
 * Level at which one dockerd log line (logrus text: level=info msg=...) reaches the launcher log.
 * dockerd's info lines are its chatter (~100 at start): debug. Pure.
 */
export function dockerdLevel(line: string): "debug" | "info" | "warn" | "error" {
  const level = /level=(\w+)/.exec(line)?.[1];
  if (level === "warning") return "warn";
  if (level === "error" || level === "fatal" || level === "panic") return "error";
  return "debug";
}

export class Dockerd {
  private child: ResultPromise | undefined;
  private exited: Promise<string> | undefined;

  async start(spec: DockerdSpec, log: LogSink): Promise<void> {
    await mkdir("/etc/docker", { recursive: true });
    if (spec.tls) {
      await mkdir(TLS_DIR, { recursive: true, mode: 0o700 });
      await writeFile(`${TLS_DIR}/ca.pem`, spec.tls.caPem, { mode: 0o644 });
      await writeFile(`${TLS_DIR}/cert.pem`, spec.tls.certPem, { mode: 0o644 });
      await writeFile(`${TLS_DIR}/key.pem`, spec.tls.keyPem, { mode: 0o600 });
    }
    const early = await access(EARLY_CONTAINERD).then(() => EARLY_CONTAINERD, () => undefined);
    if (!early) log("info", "early containerd not up; dockerd starts its own", "agent");
    await writeFile(DAEMON_JSON, JSON.stringify(daemonConfig(spec, early), null, 2));
    const child = execa("dockerd", ["--config-file", DAEMON_JSON], {
      reject: false,
      stdin: "ignore",
      buffer: false,
      // Own process group so a signal meant for the agent does not reach dockerd.
      detached: true,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = "";
      stream?.on("data", (chunk: Buffer) => {
        const lines = (rest + chunk.toString("utf8")).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) log(dockerdLevel(line), line, "dockerd");
      });
    }
    this.child = child;
    this.exited = child.then((r) => {
      const how = r.signal ? `signal ${r.signal}` : `exit code ${r.exitCode ?? "unknown"}`;
      log("warn", `dockerd exited (${how})`, "agent");
      return how;
    });
    this.sockOwner = { uid: spec.sockUid, gid: spec.sockGid };
    this.watchSocket(log);
  }

  private sockOwner = { uid: 0, gid: 0 };
  private watcher: FSWatcher | undefined;

  /** Apply the socket's owner as soon as dockerd creates it, and whenever it creates it again. */
  private watchSocket(log: LogSink): void {
    if (this.watcher) return;
    const apply = () =>
      chown(DOCKER_SOCKET, this.sockOwner.uid, this.sockOwner.gid).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") log("warn", `cannot set the owner of ${DOCKER_SOCKET}: ${err.message}`, "agent");
      });
    try {
      // /var/run is /run; inotify sees dockerd's create (and re-create after a restart).
      // Only "rename" (create/delete): our own chown raises "change", which must not loop.
      this.watcher = watch("/run", (event, name) => {
        if (name === "docker.sock" && event === "rename") void apply();
      });
    } catch (err) {
      log("warn", `cannot watch /run for docker.sock: ${(err as Error).message}`, "agent");
    }
    void apply();
  }

  /** Resolves when the dockerd started last exits. */
  exitedOnce(): Promise<string> {
    return this.exited ?? new Promise(() => undefined);
  }

  async waitReady(timeoutMs: number): Promise<{ version: string }> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited?.then(() => (exited = true));
    while (Date.now() < deadline) {
      if (exited) throw new GuestStepError("dockerd exited during start-up", "see the dockerd lines above in the launcher log");
      const ping = await dockerApi("/_ping").catch(() => undefined);
      if (ping === "OK") {
        const version = JSON.parse((await dockerApi("/version")) ?? "{}") as { Version?: unknown };
        await chown(DOCKER_SOCKET, this.sockOwner.uid, this.sockOwner.gid);
        return { version: String(version.Version ?? "unknown").slice(0, 64) };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new GuestStepError(`dockerd did not answer /_ping within ${Math.round(timeoutMs / 1000)} s`, "see the dockerd lines in the launcher log");
  }

  async stop(timeoutSeconds: number): Promise<string> {
    const child = this.child;
    if (!child || child.exitCode !== null) return "dockerd was not running";
    const started = Date.now();
    child.kill("SIGTERM");
    // dockerd gives containers timeoutSeconds, then needs a little for its own teardown.
    const bound = (timeoutSeconds + 15) * 1000;
    const done = await Promise.race([this.exited!.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), bound))]);
    if (!done) {
      child.kill("SIGKILL");
      await this.exited;
      return `dockerd killed after ${bound / 1000} s`;
    }
    return `dockerd stopped in ${((Date.now() - started) / 1000).toFixed(1)} s`;
  }
}

/** GET a docker API path over the unix socket; resolves the body of a 200 answer. */
export function dockerApi(path: string, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: DOCKER_SOCKET, path, method: "GET", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve(res.statusCode === 200 ? body : undefined));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
