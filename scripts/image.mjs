// npm run image: build the dinv container image as dinv:latest on the engine DOCKER_HOST (or the
// default socket) points at. The base is built offline (mmdebstrap + docker import) unless it
// exists already or --base-from-registry asks for image/base.Dockerfile.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { prepare, ROOT, sh } from "./lib.mjs";

const args = process.argv.slice(2);
const tag = process.env.DINV_IMAGE_TAG ?? "dinv:latest";
// The base's tag names the hash of what it is built from, so a changed package list builds a new one.
const baseInputs = ["image/base-packages.txt", "image/build-base.sh", "image/base.Dockerfile", "image/trim-base.sh", "alpine/lib/pinned-suites.sh", "alpine/lib/package-versions.sh"];
const baseHash = createHash("sha256").update(baseInputs.map((f) => readFileSync(join(ROOT, f))).join("\0")).digest("hex").slice(0, 12);
const base = process.env.DINV_IMAGE_BASE ?? `dinv-base:trixie-${baseHash}`;

prepare();
// Only the image ships the compressed root image (made once per rootfs.img).
sh("bash", ["scripts/compress-root.sh", "build/guest"]);
const engine = spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" });
if (engine.status !== 0) {
  console.error(`npm run image: no Docker engine answers (DOCKER_HOST=${process.env.DOCKER_HOST ?? "default"}): ${engine.stderr.trim()}`);
  process.exit(1);
}
const haveBase = spawnSync("docker", ["image", "inspect", base], { stdio: "ignore" }).status === 0;
if (!haveBase || args.includes("--rebuild-base")) {
  if (args.includes("--base-from-registry")) sh("docker", ["build", "-f", "image/base.Dockerfile", "-t", base, "."]);
  else sh("bash", ["image/build-base.sh", base]);
}
// The classic builder: present in every engine, and BuildKit's buildx plugin may be missing.
sh("docker", ["build", "-q", "-f", "image/Dockerfile", "--build-arg", `BASE=${base}`, "-t", tag, "."], { env: { ...process.env, DOCKER_BUILDKIT: "0" } });
const size = spawnSync("docker", ["image", "inspect", "--format", "{{.Size}}", tag], { encoding: "utf8" }).stdout.trim();
console.log(`image: ${tag} (${(Number(size) / 2 ** 20).toFixed(0)} MiB)`);
