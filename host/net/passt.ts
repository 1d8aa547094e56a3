// passt, the faster user-mode network (DINV_NET=passt): a process of its own that QEMU reaches
// over a unix socket (-netdev stream). It serves one QEMU (--one-off), so one starts per boot.

import { readFile, rm } from "node:fs/promises";
import { execa, type ResultPromise } from "execa";
import { SLIRP } from "../../shared/constants.js";
import type { Logger } from "../log.js";
import { passtForward, type Forward } from "./forwards.js";
import { exists } from "../fs/exists.js";

export interface PasstPaths {
  socket: string;
  pidFile: string;
  logFile: string;
}

export class PasstError extends Error {}

/**
 * passt's command line. Pure. The guest keeps SLIRP's fixed addressing (its init configures it
 * statically), so passt is told the same: 10.0.2.15/24, gateway 10.0.2.2 (mapped to the
 * launcher's loopback, as SLIRP does), DNS queries to 10.0.2.3 forwarded to the launcher's resolver.
 * --runas: passt drops to "nobody" otherwise, which may not reach the run directory.
 */
export function passtArgs(paths: PasstPaths, forwards: Forward[], runAs: { uid: number; gid: number }): string[] {
  const [address, prefix] = SLIRP.guestAddress.split("/");
  return [
    "--foreground", "--one-off", "--ipv4-only",
    "--socket", paths.socket, "--pid", paths.pidFile, "--log-file", paths.logFile,
    "--runas", `${runAs.uid}:${runAs.gid}`,
    "--address", address!, "--netmask", prefix!, "--gateway", SLIRP.gateway, "--dns-forward", SLIRP.dns,
    ...forwards.flatMap(passtForward),
  ];
}

export class Passt {
  private child: ResultPromise | undefined;

  constructor(
    private readonly binary: string,
    private readonly paths: PasstPaths,
    private readonly forwards: Forward[],
    private readonly log: Logger,
  ) {}

  /**
   * Start passt unless one runs; resolves once it is ready: its socket exists and it wrote its pid
   * file, which it does after sandboxing itself (passt 2025 binds the socket first, so a socket alone
   * can belong to a passt that is about to fail to create its namespaces).
   */
  async ensureRunning(timeoutMs = 5000): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    // The socket and pid file are the readiness signal: leftovers from an earlier run must go.
    await rm(this.paths.socket, { force: true });
    await rm(this.paths.pidFile, { force: true });
    const runAs = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const child = execa(this.binary, passtArgs(this.paths, this.forwards, runAs), { reject: false, stdin: "ignore", buffer: false, cleanup: true });
    child.stdout?.resume();
    child.stderr?.resume();
    let exited = false;
    void child.then(() => (exited = true));
    this.child = child;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited) throw new PasstError(`passt exited at start: ${await this.logTail()}`);
      if ((await exists(this.paths.socket)) && /^\d+\s*$/.test(await readFile(this.paths.pidFile, "utf8").catch(() => ""))) {
        this.log.debug({ src: "passt" }, `passt listening on ${this.paths.socket}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    throw new PasstError(`passt did not create its socket within ${timeoutMs} ms: ${await this.logTail()}`);
  }

  private async logTail(): Promise<string> {
    const text = await readFile(this.paths.logFile, "utf8").catch(() => "");
    return text.trim().split("\n").slice(-2).join(" / ") || "no log";
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    child.kill("SIGTERM");
    await child.catch(() => undefined);
  }
}
