// dockerd in the guest: configuration, start (or adoption of the init's), readiness probe over its unix socket, stop.

import { request } from "node:http";
import { existsSync, watch, type FSWatcher } from "node:fs";
import { access, chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { DAEMON_JSON, DOCKER_SOCKET, EARLY_CONTAINERD, TLS_DIR, TLS_FILES, daemonJson } from "../../shared/daemon-config.js";
import type { DockerdSpec } from "../../shared/protocol/guest-config.js";
import { GUEST_DOCKER_ROOT } from "../../shared/constants.js";
import { adoptProcess, followFile } from "./adopted.js";
import { loadExeca } from "./exec.js";
import { EARLY_DOCKERD_LOG } from "./early.js";
import type { LogSink } from "./types.js";
import { GuestStepError } from "./types.js";

/**
 * Level at which one dockerd log line (logrus text: level=info msg=...) reaches the launcher log.
 * dockerd's info lines are its chatter (~100 at start): debug. Pure.
 */
export function dockerdLevel(line: string): "debug" | "info" | "warn" | "error" {
  const level = /level=(\w+)/.exec(line)?.[1];
  // Its warnings about the plain TCP listener the launcher asked for: the launcher says it once itself.
  if (/Binding to (an )?IP address|API is accessible on http|DEPRECATION NOTICE|No swap limit support/.test(line)) return "debug";
  // dockerd 28 probes the IPsec modules of swarm's encrypted overlay networks, which the guest leaves out.
  if (/Could not load necessary modules for IPSEC rules/.test(line)) return "debug";
  if (level === "warning") return "warn";
  if (level === "error" || level === "fatal" || level === "panic") return "error";
  return "debug";
}

/** Where dockerd (23 and later) keeps its engine ID, `docker info`'s ID, read once at its start. */
export const ENGINE_ID_FILE = `${GUEST_DOCKER_ROOT}/engine-id`;

/** A dockerd the agent runs: spawned by it, or started by the guest init and adopted. */
interface DockerdProcess {
  /** undefined only for a spawn that failed */
  pid: number | undefined;
  exited: Promise<string>;
  running(): boolean;
  kill(signal: NodeJS.Signals): void;
}

export class Dockerd {
  private proc: DockerdProcess | undefined;
  private exited: Promise<string> | undefined;
  private stopFollowing: (() => void) | undefined;

  async start(spec: DockerdSpec, log: LogSink): Promise<void> {
    this.stopFollowing?.();
    this.stopFollowing = undefined;
    await mkdir("/etc/docker", { recursive: true });
    if (spec.tls) {
      await mkdir(TLS_DIR, { recursive: true, mode: 0o700 });
      for (const f of TLS_FILES) await writeFile(`${TLS_DIR}/${f.name}`, spec.tls[f.field], { mode: f.mode });
    }
    const early = await access(EARLY_CONTAINERD).then(() => EARLY_CONTAINERD, () => undefined);
    if (!early) log("info", "early containerd not up; dockerd starts its own", "agent");
    await writeFile(DAEMON_JSON, daemonJson(spec, early));
    const execa = await loadExeca();
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
    const exited = child.then((r) => (r.signal ? `signal ${r.signal}` : `exit code ${r.exitCode ?? "unknown"}`));
    this.use({ pid: child.pid, exited, running: () => child.exitCode === null && child.signalCode === null, kill: (sig) => child.kill(sig) }, spec, log);
  }

  /**
   * Take over the dockerd the guest init started, if it runs with the configuration this spec
   * renders; otherwise say why not (the caller then stops it and starts its own).
   */
  async adopt(spec: DockerdSpec, pid: number, log: LogSink): Promise<{ adopted: true } | { adopted: false; reason: string }> {
    const written = await readFile(DAEMON_JSON, "utf8").catch(() => "");
    if (written !== daemonJson(spec, EARLY_CONTAINERD)) return { adopted: false, reason: "its daemon.json differs from the configuration the launcher sent" };
    const proc = await adoptProcess(pid);
    if (!proc) return { adopted: false, reason: `pid ${pid} is not running` };
    this.stopFollowing = followFile(EARLY_DOCKERD_LOG, (line) => log(dockerdLevel(line), line, "dockerd"));
    this.use(proc, spec, log);
    return { adopted: true };
  }

  /** Stop a dockerd the agent will not adopt (the init started it with other settings). */
  static async discard(pid: number, timeoutSeconds: number): Promise<void> {
    const proc = await adoptProcess(pid);
    if (proc) await terminate(proc, proc.exited, timeoutSeconds);
  }

  private use(proc: DockerdProcess, spec: DockerdSpec, log: LogSink): void {
    this.proc = proc;
    this.exited = proc.exited.then((how) => {
      log("warn", `dockerd exited (${how})`, "agent");
      return how;
    });
    this.sockOwner = { uid: spec.sockUid, gid: spec.sockGid };
    this.watchSocket(log);
  }

  /** The running dockerd's process id (a warm start renews its engine ID in place). */
  pid(): number | undefined {
    return this.proc?.running() ? this.proc.pid : undefined;
  }

  private sockOwner = { uid: 0, gid: 0 };
  private watcher: FSWatcher | undefined;

  /** A new owner for docker.sock (a warm start's run), applied now and on every re-create. */
  async setSocketOwner(uid: number, gid: number): Promise<void> {
    this.sockOwner = { uid, gid };
    await this.applyOwner();
  }

  /** The owner on docker.sock; no socket yet is no error (it gets the owner when dockerd makes it). */
  private applyOwner(): Promise<void> {
    return chown(DOCKER_SOCKET, this.sockOwner.uid, this.sockOwner.gid).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  /** Apply the socket's owner as soon as dockerd creates it, and whenever it creates it again. */
  private watchSocket(log: LogSink): void {
    if (this.watcher) return;
    const apply = () => this.applyOwner().catch((err: Error) => log("warn", `cannot set the owner of ${DOCKER_SOCKET}: ${err.message}`, "agent"));
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

  async waitReady(timeoutMs: number, signal?: AbortSignal): Promise<{ version: string }> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited?.then(() => (exited = true));
    while (Date.now() < deadline) {
      if (signal?.aborted) throw new GuestStepError("the shutdown came before dockerd answered");
      if (exited) throw new GuestStepError("dockerd exited during start-up", "see the dockerd lines above in the launcher log");
      // Until dockerd creates its socket (its Go start-up alone takes seconds under TCG) a stat
      // is all a poll costs; an HTTP request each time was CPU taken from dockerd's own start.
      const ping = existsSync(DOCKER_SOCKET) ? await dockerApi("/_ping").catch(() => undefined) : undefined;
      if (ping === "OK") {
        const version = JSON.parse((await dockerApi("/version")) ?? "{}") as { Version?: unknown };
        await chown(DOCKER_SOCKET, this.sockOwner.uid, this.sockOwner.gid);
        return { version: String(version.Version ?? "unknown").slice(0, 64) };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new GuestStepError(`dockerd did not answer /_ping within ${Math.round(timeoutMs / 1000)} s`, "see the dockerd lines in the launcher log");
  }

  async stop(timeoutSeconds: number, meanwhile: () => void = () => undefined): Promise<string> {
    const proc = this.proc;
    if (!proc || !proc.running()) return "dockerd was not running";
    const started = Date.now();
    // dockerd's own shutdown stops each container with that container's stop timeout (10 s unless
    // set), whatever shutdown-timeout says: the running containers are stopped first, in parallel,
    // with DINV_SHUTDOWN_TIMEOUT, so the whole stop fits a `docker stop` grace period.
    const containers = await stopContainers(timeoutSeconds, meanwhile).catch(() => 0);
    const killedAfterMs = await terminate(proc, this.exited!, timeoutSeconds);
    this.stopFollowing?.();
    const what = containers ? `${containers} container(s) and dockerd` : "dockerd";
    if (killedAfterMs !== undefined) return `${what}: dockerd killed after ${killedAfterMs / 1000} s`;
    return `${what} stopped in ${((Date.now() - started) / 1000).toFixed(1)} s`;
  }
}

/** Stop every running container, in parallel, each given `timeoutSeconds` after SIGTERM; resolves with how many. */
async function stopContainers(timeoutSeconds: number, meanwhile: () => void): Promise<number> {
  const list = JSON.parse((await dockerApi("/containers/json")) ?? "[]") as { Id?: unknown }[];
  const ids = list.map((c) => c.Id).filter((id): id is string => typeof id === "string" && /^[0-9a-f]{64}$/.test(id));
  const bound = (timeoutSeconds + 10) * 1000;
  const stopped = Promise.all(ids.map((id) => dockerApi(`/containers/${id}/stop?t=${timeoutSeconds}`, bound, "POST").catch(() => undefined)));
  // Work that may run during the containers' grace starts after the requests are out (with none, at once).
  setTimeout(meanwhile, ids.length ? 300 : 0);
  await stopped;
  return ids.length;
}

/**
 * SIGTERM, then SIGKILL if dockerd is still up after its containers' timeout plus a little for its
 * own teardown. Resolves once it is gone: undefined, or the ms after which it was killed.
 */
async function terminate(proc: Pick<DockerdProcess, "kill">, exited: Promise<unknown>, timeoutSeconds: number): Promise<number | undefined> {
  proc.kill("SIGTERM");
  const bound = (timeoutSeconds + 15) * 1000;
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), bound)))]);
  clearTimeout(timer);
  if (done) return undefined;
  proc.kill("SIGKILL");
  await exited;
  return bound;
}

/** A docker API request over the unix socket (GET unless said); resolves the body of a 200 answer. */
export function dockerApi(path: string, timeoutMs = 2000, method: "GET" | "POST" = "GET"): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: DOCKER_SOCKET, path, method, timeout: timeoutMs }, (res) => {
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
