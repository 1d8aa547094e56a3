// The container image's weight, which CI runners pay at every job on a fresh machine: its size
// on disk (`docker image inspect`), compressed (`docker save | gzip -1 | wc -c`), and what of it
// the guest takes (root image, kernel, initramfs). A figure, not a ratio: the baseline is
// docker:dind's published size (528 MB on disk, 137 MB compressed), quoted, not measured here.
// Builds the image on its own dockerd (root only). Usage: node --import tsx bench/image.ts [--json]

import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { REPO } from "../test/helpers/dinv-process.js";
import { TestDockerd } from "../test/helpers/test-dockerd.js";
import { GUEST_DIR, table } from "./lib.js";

const MB = 1e6;

export async function benchImage(log: (s: string) => void) {
  const engine = await TestDockerd.start();
  try {
    const built = spawnSync(process.execPath, ["scripts/image.mjs"], { cwd: REPO, env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8" });
    if (built.status !== 0) throw new Error(`npm run image failed: ${built.stderr.slice(-2000)}`);
    const size = Number(engine.docker(["image", "inspect", "--format", "{{.Size}}", "dinv:latest"]).stdout.trim());
    const gz = spawnSync("sh", ["-c", "docker save dinv:latest | gzip -1 | wc -c"], { env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8", maxBuffer: 1 << 20 });
    const file = (name: string) => Math.round(statSync(join(GUEST_DIR, name)).size / MB);
    const result = {
      image_mb: Math.round(size / MB),
      image_gz_mb: Math.round(Number(gz.stdout.trim()) / MB),
      guest_files_mb: { rootfs: file("rootfs.img"), vmlinuz: file("vmlinuz"), initramfs: file("initramfs.cpio") },
    };
    log(JSON.stringify(result));
    return result;
  } finally {
    await engine.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
  const r = await benchImage((s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else console.log(table([["", "MB"], ["image on disk", r.image_mb], ["image compressed (gzip -1)", r.image_gz_mb], ["guest root image", r.guest_files_mb.rootfs], ["guest kernel (vmlinuz)", r.guest_files_mb.vmlinuz]]));
}
