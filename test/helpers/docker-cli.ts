// The docker CLI of the test machine, pointed at a dinv.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, copyFileSync, symlinkSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export function docker(host: string, args: string[], input?: Buffer, timeoutMs = 180_000): { code: number; stdout: string; stderr: string } {
  const result = spawnSync("docker", args, {
    env: { ...process.env, DOCKER_HOST: host },
    input,
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: result.status ?? -1, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? "") };
}

/**
 * A tar of a small root for `docker import`: the test machine's static busybox, plus any other
 * binaries with the shared libraries ldd names (e.g. the docker CLI, socat).
 */
export function testRootTar(binaries: string[] = []): Buffer {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox not found: apt-get install busybox-static");
  const root = mkdtempSync(join(tmpdir(), "dinv-busybox-"));
  mkdirSync(join(root, "bin"));
  copyFileSync(busybox, join(root, "bin/busybox"));
  const applets = execFileSync(busybox, ["--list"]).toString().split("\n").filter(Boolean);
  for (const applet of applets) if (applet !== "busybox") symlinkSync("busybox", join(root, "bin", applet));
  for (const binary of binaries) {
    const libs = execFileSync("ldd", [binary]).toString().match(/\/\S+\.so[^\s]*/g) ?? [];
    for (const file of [binary, ...libs]) {
      mkdirSync(join(root, dirname(file)), { recursive: true });
      if (!existsSync(join(root, file))) copyFileSync(file, join(root, file));
    }
  }
  return execFileSync("tar", ["-C", root, "-c", "."], { maxBuffer: 256 * 1024 * 1024 });
}

/** Import the test image into a dinv under the given tag. */
export function importBusybox(host: string, tag = "dinv-test/busybox:latest", binaries: string[] = []): void {
  const result = docker(host, ["import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=/bin:/usr/bin", "-", tag], testRootTar(binaries));
  if (result.code !== 0) throw new Error(`docker import failed: ${result.stderr}`);
}

/** GET a URL until it answers with a body (a published port takes a moment), at most `attempts` × 0.5 s. */
export async function fetchBody(url: string, attempts = 40): Promise<string> {
  for (let i = 0; i < attempts; i++) {
    const body = await fetch(url).then((r) => r.text(), () => "");
    if (body) return body;
    await new Promise((r) => setTimeout(r, 500));
  }
  return "";
}
