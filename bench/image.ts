// The container image's weight, which CI runners pay at every job on a fresh machine: its size
// on disk (`docker image inspect`), compressed (`docker save | gzip -1 | wc -c`), and what of it
// the guest takes (root image as shipped, kernel, initramfs). A figure, not a ratio: the baseline is
// docker:dind's published size (528 MB on disk, 137 MB compressed), quoted, not measured here.
// Builds the image on its own dockerd (root only). With --compare ARCHIVE (a `docker save` of another
// dinv image, e.g. an older build) also the cold ready time of both, docker run to /_ping, runs
// interleaved: ready_ratio = this image's median / the other's.
// Usage: node --import tsx bench/image.ts [--json] [--compare ARCHIVE --runs 3]

import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { REPO } from "../test/helpers/dinv-process.js";
import { TestDockerd } from "../test/helpers/test-dockerd.js";
import { GUEST_DIR, median, table } from "./lib.js";
import { imageReady } from "./warm.js";

const MB = 1e6;

export async function benchImage(log: (s: string) => void, compare?: { archive: string; runs: number }) {
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
      ...(compare ? { ready: await compareReady(engine, compare, log) } : {}),
      guest_files_mb: { rootfs_zst: file("rootfs.img.zst"), vmlinuz: file("vmlinuz"), initramfs: file("initramfs.cpio") },
    };
    log(JSON.stringify(result));
    return result;
  } finally {
    await engine.stop();
  }
}

async function compareReady(engine: TestDockerd, c: { archive: string; runs: number }, log: (s: string) => void) {
  const loaded = engine.docker(["load", "-i", c.archive]);
  const other = /Loaded image: (\S+)/.exec(loaded.stdout)?.[1];
  if (loaded.code !== 0 || !other) throw new Error(`docker load -i ${c.archive} failed: ${loaded.stderr}`);
  const ms: Record<"this" | "other", number[]> = { this: [], other: [] };
  for (let i = 0; i < c.runs; i++) {
    ms.this.push(await imageReady(engine, undefined, "dinv:latest"));
    ms.other.push(await imageReady(engine, undefined, other));
    log(`run ${i + 1}/${c.runs}: dinv:latest ${ms.this.at(-1)} ms, ${other} ${ms.other.at(-1)} ms`);
  }
  return { image_ms: median(ms.this), other_ms: median(ms.other), other, ready_ratio: Number((median(ms.this) / median(ms.other)).toFixed(3)), runs_ms: ms };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, compare: { type: "string" }, runs: { type: "string", default: "3" } } });
  const r = await benchImage((s) => console.error(s), values.compare ? { archive: values.compare, runs: Number(values.runs) } : undefined);
  if (values.json) console.log(JSON.stringify(r));
  else console.log(table([["", "MB"], ["image on disk", r.image_mb], ["image compressed (gzip -1)", r.image_gz_mb], ["guest root image (zstd, as shipped)", r.guest_files_mb.rootfs_zst], ["guest kernel (vmlinuz)", r.guest_files_mb.vmlinuz]]));
}
