// A real registry (Debian's docker-registry, distribution 2.8) on the launcher side's loopback, for
// docker push/pull tests and benchmarks. The guest reaches it as 10.0.2.2:PORT (SLIRP and passt map
// their gateway to the launcher's loopback), listed in DINV_INSECURE_REGISTRIES (plain HTTP).

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SLIRP } from "../../shared/constants.js";
import { freePort } from "./dinv-process.js";

export class TestRegistry {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  /** host:port as the guest's dockerd reaches it. */
  get fromGuest(): string {
    return `${SLIRP.gateway}:${this.port}`;
  }

  /** host:port on this machine's loopback. */
  get local(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(): Promise<TestRegistry> {
    const dir = mkdtempSync(join(tmpdir(), "dinv-registry-"));
    const port = await freePort();
    const config = join(dir, "config.yml");
    writeFileSync(config, [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${join(dir, "data")} }, delete: { enabled: true } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      "",
    ].join("\n"));
    const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr!.on("data", (c) => (log = (log + c).slice(-4000)));
    const registry = new TestRegistry(port, dir, child);
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) break;
      const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
      if (ok) return registry;
      await new Promise((r) => setTimeout(r, 100));
    }
    registry.stop();
    throw new Error(`docker-registry did not answer on 127.0.0.1:${port}:\n${log}`);
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill("SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
