// A private Docker engine for the container end-to-end suite: its own socket, data root, pid
// file and bridge (172.30.0.0/16, away from 172.17 and dinv's 172.19). Root only.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BRIDGE = "dinve2e0";

/**
 * `--device /dev/kvm` where this machine has the device file, else nothing: the image then runs
 * under TCG, as it does for a user without KVM (docker refuses a device that does not exist).
 */
export const KVM_DEVICE: string[] = existsSync("/dev/kvm") ? ["--device", "/dev/kvm"] : [];

export class TestDockerd {
  private constructor(
    readonly base: string,
    private readonly child: ChildProcess,
  ) {}

  get host(): string {
    return `unix://${join(this.base, "docker.sock")}`;
  }

  static async start(): Promise<TestDockerd> {
    const base = mkdtempSync(join(tmpdir(), "dinv-e2e-dockerd-"));
    spawnSync("ip", ["link", "del", BRIDGE], { stdio: "ignore" });
    for (const args of [["link", "add", BRIDGE, "type", "bridge"], ["addr", "add", "172.30.0.1/16", "dev", BRIDGE], ["link", "set", BRIDGE, "up"]]) {
      const r = spawnSync("ip", args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
    }
    const child = spawn("dockerd", [
      "--data-root", join(base, "data"),
      "--exec-root", join(base, "exec"),
      "--host", `unix://${join(base, "docker.sock")}`,
      "--pidfile", join(base, "dockerd.pid"),
      "--bridge", BRIDGE,
      // Published ports on 127.0.0.1 go through docker-proxy; leave the host's firewall alone.
      "--iptables=false",
      "--ip-forward=false",
    ], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr!.on("data", (c) => (log = (log + c).slice(-4000)));
    const engine = new TestDockerd(base, child);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (engine.docker(["version"]).code === 0) return engine;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await engine.stop();
    throw new Error(`test dockerd did not start:\n${log}`);
  }

  docker(args: string[], options: { input?: Buffer; timeoutMs?: number; env?: Record<string, string> } = {}): { code: number; stdout: string; stderr: string } {
    const result = spawnSync("docker", args, {
      env: { ...process.env, DOCKER_HOST: this.host, ...options.env },
      input: options.input,
      timeout: options.timeoutMs ?? 600_000,
      maxBuffer: 512 * 1024 * 1024,
    });
    return { code: result.status ?? -1, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? "") };
  }

  async stop(): Promise<void> {
    const pidFile = join(this.base, "dockerd.pid");
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : this.child.pid;
    if (pid) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        /* gone */
      }
      const deadline = Date.now() + 30_000;
      while (this.child.exitCode === null && this.child.signalCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    }
    spawnSync("ip", ["link", "del", BRIDGE], { stdio: "ignore" });
    // Remove the engine's files only when nothing is mounted below them any more.
    const mounts = readFileSync("/proc/mounts", "utf8");
    if (!mounts.includes(this.base)) rmSync(this.base, { recursive: true, force: true });
  }
}
