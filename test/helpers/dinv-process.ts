// Runs `dinv run` (the bundled launcher) as a user would, for VM tests: own directories, a
// free port, JSON log lines collected, readiness asked with `dinv wait` / `dinv status --json`.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { DinvStateSchema, type DinvState } from "../../shared/protocol/control.js";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export { freePort, REPO } from "./paths.js";
import { freePort, REPO } from "./paths.js";
export const DINV = join(REPO, "dist/dinv.js");

export interface LogLine {
  level: number;
  msg: string;
  src?: string;
  [key: string]: unknown;
}

export class DinvProcess {
  readonly logs: LogLine[] = [];
  readonly rawStderr: string[] = [];
  child: ChildProcess | undefined;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> | undefined;

  constructor(readonly env: Record<string, string>) {}

  /** A fresh set of directories and a free docker port; overrides win. */
  static async create(overrides: Record<string, string> = {}): Promise<DinvProcess> {
    const base = mkdtempSync(join(tmpdir(), "dinv-vm-"));
    return new DinvProcess({
      DINV_DOCKER_DIR: join(base, "docker"),
      DINV_VOLUME_DIR: join(base, "volume"),
      DINV_RUN_DIR: join(base, "run"),
      DINV_DOCKER_PORT: String(await freePort()),
      DINV_ACCEL: "auto",
      ...overrides,
    });
  }

  /** The address the launcher's forwards listen on (DINV_BIND_ADDR; 0.0.0.0 is reached on loopback). */
  get bindHost(): string {
    const bind = this.env.DINV_BIND_ADDR ?? "127.0.0.1";
    return bind === "0.0.0.0" ? "127.0.0.1" : bind;
  }

  get dockerHost(): string {
    return `tcp://${this.bindHost}:${this.env.DINV_DOCKER_PORT}`;
  }

  start(): void {
    this.logs.length = 0;
    const child = spawn(process.execPath, [DINV, "run"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let rest = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        this.rawStderr.push(line);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          /* not a log line */
        }
      }
    });
    child.stdout!.resume();
    this.child = child;
    this.exit = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal, at: Date.now() })));
  }

  /** Run a `dinv` client command against this launcher, as a user would. */
  cli(args: string[], timeoutMs = 30_000): { code: number; stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, [DINV, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_RUN_DIR: this.env.DINV_RUN_DIR! },
      timeout: timeoutMs,
    });
    return { code: result.status ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  }

  /** `dinv status --json`, parsed; the last state seen when the launcher is gone. */
  state(): DinvState | undefined {
    const result = this.cli(["status", "--json"]);
    if (result.code === 3) return this.lastState;
    const parsed = DinvStateSchema.safeParse(JSON.parse(result.stdout));
    if (!parsed.success) throw new Error(`dinv status --json printed an invalid state: ${result.stdout.slice(0, 500)}`);
    this.lastState = parsed.data;
    return parsed.data;
  }

  private lastState: DinvState | undefined;

  /** `dinv wait`: resolves with its exit code and output. */
  async wait(timeoutSeconds: number): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [DINV, "wait", "--timeout", String(timeoutSeconds)], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_RUN_DIR: this.env.DINV_RUN_DIR! },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => (stdout += c));
      child.stderr.on("data", (c) => (stderr += c));
      child.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  /** `dinv events --json` running: the states it printed, and its exit once the launcher is gone. */
  events(): { states: () => DinvState[]; exit: Promise<number> } {
    const child = spawn(process.execPath, [DINV, "events", "--json"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_RUN_DIR: this.env.DINV_RUN_DIR! },
    });
    let stdout = "";
    child.stdout.on("data", (c) => (stdout += c));
    const exit = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
    return { states: () => stdout.split("\n").filter(Boolean).map((l) => DinvStateSchema.parse(JSON.parse(l))), exit };
  }

  /** Wait until ready or degraded (via `dinv wait`); returns the state then. */
  async waitUntilSettled(timeoutSeconds = 300): Promise<DinvState> {
    const waited = await this.wait(timeoutSeconds);
    const state = this.state();
    if (!state || (waited.code !== 0 && state.phase !== "degraded")) {
      // A kernel warning or oops starts far above the tail: name its first lines too.
      const kernel = this.rawStderr.filter((l) => /(WARNING|BUG|Oops|Kernel panic|cut here)/.test(l) && l.includes('"src":"console"')).slice(0, 6);
      throw new Error(`dinv wait exited ${waited.code}: ${waited.stderr}\n${kernel.length ? `kernel:\n${kernel.join("\n")}\n` : ""}log tail:\n${this.tail()}`);
    }
    return state;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<{ code: number | null; ms: number }> {
    const sent = Date.now();
    this.child?.kill(signal);
    const exit = await this.exit!;
    return { code: exit.code, ms: exit.at - sent };
  }

  /** Kill whatever is left (test clean-up, also after failures). */
  async kill(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const done = await Promise.race([this.exit!.then(() => true), new Promise((r) => setTimeout(() => r(false), 60_000))]);
      if (!done) this.child.kill("SIGKILL");
    }
    try {
      const pid = Number(readFileSync(join(this.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
      if (pid > 0) process.kill(pid, "SIGKILL");
    } catch {
      /* QEMU already gone */
    }
  }

  tail(n = 40): string {
    return this.rawStderr.slice(-n).join("\n");
  }

  /** The first log message matching re, waiting up to timeoutMs (a spawnSync in the test holds back the launcher's lines until it returns). */
  async logged(re: RegExp, timeoutMs = 10_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.messages().find((m) => re.test(m));
      if (hit !== undefined || Date.now() > deadline) return hit;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  messages(): string[] {
    return this.logs.map((l) => l.msg);
  }
}
