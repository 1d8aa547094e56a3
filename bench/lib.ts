// Shared pieces of the benchmarks: medians, HTTP polling of the docker API, a free-running
// QEMU for baselines, and result printing. Every figure is a ratio against a baseline measured
// in the same run on the same machine.

import { request } from "node:http";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEnv } from "../host/config/env.js";
import { buildQemuArgs, type QemuPlan } from "../host/qemu/args.js";
import { qemuFeatures } from "../host/qemu/version.js";
import { tscKhzFromCpuinfo } from "../host/preflight.js";
import { startQemu, type QemuProcess } from "../host/qemu/process.js";
import { readFileSync } from "node:fs";
import { REPO, freePort } from "../test/helpers/dinv-process.js";

export const GUEST_DIR = join(REPO, "build/guest");

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/_ping", timeout: 1000 }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve(body === "OK"));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** ms from `since` until the docker API answers /_ping on port (polled every 100 ms). */
export async function untilPing(port: number, since: number, timeoutMs = 300_000): Promise<number> {
  while (Date.now() - since < timeoutMs) {
    if (await ping(port)) return Date.now() - since;
    // Fine enough for a warm start's ~2 s; a failed connect to a closed port costs nothing.
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no /_ping on ${port} within ${timeoutMs / 1000} s`);
}

/** A QEMU booted with dinv's own argv builder, outside the launcher (for baselines). */
export async function bareQemu(env: Record<string, string>, extraCmdline: string[]): Promise<{ qemu: QemuProcess; port: number; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "dinv-bench-"));
  const port = await freePort();
  const config = parseEnv({ DINV_DOCKER_PORT: String(port), DINV_ACCEL: "tcg", ...env }, { guestDir: GUEST_DIR });
  const disk = join(dir, "docker.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, String(config.dockerSizeBytes)]);
  // The agent port's socket must exist for QEMU to connect; nothing answers on it.
  const agentSocket = join(dir, "agent.sock");
  const server = createServer((s) => s.resume());
  await new Promise<void>((r) => server.listen(agentSocket, r));
  const plan: QemuPlan = {
    accel: "tcg",
    qemu: qemuFeatures(execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" })),
    kernel: join(GUEST_DIR, "vmlinux"),
    initrd: join(GUEST_DIR, "initramfs.cpio"),
    rootImage: join(GUEST_DIR, "rootfs.img"),
    dockerDisk: disk,
    agentSocket,
    qmpSocket: join(dir, "qmp.sock"),
    pidFile: join(dir, "qemu.pid"),
    shares: [],
    extraCmdline,
  };
  const tsc = tscKhzFromCpuinfo(readFileSync("/proc/cpuinfo", "utf8"));
  if (tsc) plan.tscKhz = tsc;
  const qemu = startQemu("qemu-system-x86_64", buildQemuArgs(config, plan), () => undefined, () => undefined);
  void qemu.exited.then(() => server.close());
  return { qemu, port, dir };
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padStart(widths[i]!)).join("  ")).join("\n");
}

/** GET a URL: bytes received and ms taken; never throws (a failed request is { bytes: -1 }). */
export function get(url: string, timeoutMs = 60_000): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const done = (bytes: number) => resolve({ bytes, ms: performance.now() - t0 });
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => (bytes += c.length));
      res.on("end", () => done(res.statusCode === 200 ? bytes : -1));
      res.on("error", () => done(-1));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => done(-1));
    req.end();
  });
}
