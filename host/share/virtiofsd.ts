// virtiofsd processes serving DINV_MOUNTS over virtio-fs: one per share, started before each QEMU
// (each serves one connection and exits when QEMU goes away). Two implementations are in use:
// QEMU 7.2's C daemon (Debian 12) and the Rust one (Debian 13, the container image).

import { rm } from "node:fs/promises";
import { execa, type ResultPromise } from "execa";
import type { Logger } from "../log.js";
import { exists } from "../fs/exists.js";

export interface VirtiofsShare {
  tag: string;
  /** launcher-side directory */
  path: string;
  /** vhost-user socket virtiofsd listens on and QEMU connects to */
  socket: string;
}

export class VirtiofsdError extends Error {}

/** The uid and gid files the guest's root creates get on the launcher side (Rust virtiofsd). */
export const NOBODY = 65534;

/** Which virtiofsd: QEMU's C daemon ("virtiofsd version 7.2.22 ...") or the Rust one ("virtiofsd 1.13.2"). */
export type VirtiofsdFlavour = "c" | "rust";

/** The flavour from `virtiofsd --version`'s first line, undefined when it is neither. Pure. */
export function virtiofsdFlavour(versionText: string): VirtiofsdFlavour | undefined {
  const first = versionText.trim().split("\n")[0] ?? "";
  if (/^virtiofsd version \d/.test(first)) return "c";
  if (/^virtiofsd v?\d+\.\d+/.test(first)) return "rust";
  return undefined;
}

/**
 * virtiofsd's command line, the same settings in each flavour's syntax. Pure.
 * sandbox chroot: the namespace sandbox needs mount namespaces, which a container does not grant.
 * rlimit-nofile 0: raising the limit needs CAP_SYS_RESOURCE, which a container lacks.
 * cache auto: the guest caches attributes and data for 1 s, the launcher side may still change them.
 * No CAP_MKNOD: root in the guest can create no device node on the launcher side. The Rust daemon
 * also maps the guest's root to nobody for what it creates or chowns (and back when the guest
 * reads), so a setuid bit the guest sets is never on a root-owned file; QEMU 7.2's C daemon has no
 * such mapping (SECURITY.md).
 */
export function virtiofsdArgs(share: VirtiofsShare, flavour: VirtiofsdFlavour): string[] {
  if (flavour === "rust") {
    // One argument a value: no option string to split, so the path needs no escaping.
    return [
      "--socket-path", share.socket, "--shared-dir", share.path, "--sandbox", "chroot", "--cache", "auto", "--rlimit-nofile", "0",
      "--modcaps=-mknod",
      ...["uid", "gid"].flatMap((id) => [`--translate-${id}`, `squash-guest:0:${NOBODY}:1`, `--translate-${id}`, `squash-host:${NOBODY}:0:1`]),
    ];
  }
  // The C virtiofsd splits -o on commas (libfuse's fuse_opt): a literal one is written \, there.
  const source = share.path.replace(/[\\,]/g, (c) => `\\${c}`);
  return [`--socket-path=${share.socket}`, "-o", `source=${source}`, "-o", "sandbox=chroot", "-o", "cache=auto", "-o", "modcaps=-mknod", "--rlimit-nofile=0"];
}

export class VirtiofsdSet {
  private children = new Map<string, ResultPromise>();

  constructor(
    private readonly binary: string,
    private readonly flavour: VirtiofsdFlavour,
    private readonly shares: VirtiofsShare[],
    private readonly log: Logger,
  ) {}

  /** Start a virtiofsd for every share that has none running; resolves once all sockets exist. */
  async ensureRunning(timeoutMs = 5000): Promise<void> {
    for (const share of this.shares) {
      const running = this.children.get(share.tag);
      if (running && running.exitCode === null && running.signalCode === null) continue;
      await this.startOne(share, timeoutMs);
    }
  }

  private async startOne(share: VirtiofsShare, timeoutMs: number): Promise<void> {
    // The socket's appearance is the readiness signal: a leftover from an earlier run must go.
    await rm(share.socket, { force: true });
    const child = execa(this.binary, virtiofsdArgs(share, this.flavour), { reject: false, stdin: "ignore", buffer: false, cleanup: true });
    let output = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        const text = chunk.toString("utf8");
        if (output.length < 4000) output += text;
        for (const line of text.split("\n")) if (line.trim()) this.log.debug({ src: "virtiofsd", tag: share.tag }, line.trim());
      });
    }
    let exited = false;
    void child.then(() => (exited = true));
    this.children.set(share.tag, child);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited) throw new VirtiofsdError(`virtiofsd for ${share.path} exited at start: ${output.trim().split("\n").slice(-2).join(" / ") || "no output"}`);
      if (await exists(share.socket)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    throw new VirtiofsdError(`virtiofsd for ${share.path} did not create its socket within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    const all = [...this.children.values()];
    for (const child of all) child.kill("SIGTERM");
    await Promise.all(all.map((c) => c.catch(() => undefined)));
    this.children.clear();
  }
}
