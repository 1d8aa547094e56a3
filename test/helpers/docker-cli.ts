// The docker CLI of the test machine, pointed at a dinv.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, copyFileSync, symlinkSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function docker(host: string, args: string[], input?: Buffer, timeoutMs = 180_000): { code: number; stdout: string; stderr: string } {
  const result = spawnSync("docker", args, {
    env: { ...process.env, DOCKER_HOST: host },
    input,
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: result.status ?? -1, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? "") };
}

/** A tar of a one-binary busybox root (from the test machine's busybox-static), for `docker import`. */
export function busyboxRootTar(): Buffer {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox not found: apt-get install busybox-static");
  const root = mkdtempSync(join(tmpdir(), "dinv-busybox-"));
  mkdirSync(join(root, "bin"));
  copyFileSync(busybox, join(root, "bin/busybox"));
  for (const applet of ["sh", "echo", "cat", "ls", "sleep", "id", "touch", "dd", "sync", "httpd", "nc", "wget", "nproc", "free", "stat", "mkdir", "rm", "trap"]) {
    symlinkSync("busybox", join(root, "bin", applet));
  }
  return execFileSync("tar", ["-C", root, "-c", "."], { maxBuffer: 64 * 1024 * 1024 });
}

/** Import the busybox image into a dinv under the given tag. */
export function importBusybox(host: string, tag = "dinv-test/busybox:latest"): void {
  const result = docker(host, ["import", "--change", 'CMD ["/bin/sh"]', "-", tag], busyboxRootTar());
  if (result.code !== 0) throw new Error(`docker import failed: ${result.stderr}`);
}
