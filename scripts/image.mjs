// npm run image: build the dinv container image as dinv:latest on the engine DOCKER_HOST (or the
// default socket) points at. The base is built offline (mmdebstrap + docker import) unless it
// exists already or --base-from-registry asks for image/base.Dockerfile.
import { spawnSync } from "node:child_process";
import { prepare, sh } from "./lib.mjs";

const args = process.argv.slice(2);
const tag = process.env.DINV_IMAGE_TAG ?? "dinv:latest";
const base = process.env.DINV_IMAGE_BASE ?? "dinv-base:bookworm";

prepare();
const engine = spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" });
if (engine.status !== 0) {
  console.error(`npm run image: no Docker engine answers (DOCKER_HOST=${process.env.DOCKER_HOST ?? "default"}): ${engine.stderr.trim()}`);
  process.exit(1);
}
const haveBase = spawnSync("docker", ["image", "inspect", base], { stdio: "ignore" }).status === 0;
if (!haveBase || args.includes("--rebuild-base")) {
  if (args.includes("--base-from-registry")) sh("docker", ["build", "-f", "image/base.Dockerfile", "-t", base, "image/"]);
  else sh("bash", ["image/build-base.sh", base]);
}
// The classic builder: present in every engine, and BuildKit's buildx plugin may be missing.
sh("docker", ["build", "-q", "-f", "image/Dockerfile", "--build-arg", `BASE=${base}`, "-t", tag, "."], { env: { ...process.env, DOCKER_BUILDKIT: "0" } });
const size = spawnSync("docker", ["image", "inspect", "--format", "{{.Size}}", tag], { encoding: "utf8" }).stdout.trim();
console.log(`image: ${tag} (${(Number(size) / 2 ** 20).toFixed(0)} MiB)`);
