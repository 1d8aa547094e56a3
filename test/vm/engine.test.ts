// VM suite: the guest's Docker engine itself. One guest with dinv's defaults: a maintained engine
// (versions asserted as numbers), what docker:dind's entrypoint gives its dockerd (a shared root
// mount, cgroup limits), and the clients old and new (this machine's Debian 12 CLI 20.10, the
// image's CLI). A second guest runs the containerd image store (DINV_DOCKERD_CONFIG) through a
// build, a run, a push and pull with a real registry, save and load, and a restart.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIN_ENGINE } from "../../shared/constants.js";
import { clientDocker } from "../helpers/clients.js";
import { DinvProcess } from "../helpers/dinv-process.js";
import { importBusybox } from "../helpers/docker-cli.js";
import { TestRegistry } from "../helpers/registry.js";

const BUSYBOX = "dinv-test/busybox:latest";
/** Debian 12's own docker CLI (docker.io 20.10), installed with the machine's dockerd. */
const OLD_CLI = "/usr/bin/docker";

const major = (v: string) => Number(/^(\d+)\./.exec(v)?.[1] ?? Number.NaN);

describe("the guest's engine: a maintained Docker, docker:dind's mount and cgroup set-up, old and new clients", () => {
  let dinv: DinvProcess;
  const docker = (args: string[]) => clientDocker(dinv.dockerHost, args);

  before(async () => {
    dinv = await DinvProcess.create();
    dinv.start();
    assert.equal((await dinv.waitUntilSettled()).phase, "ready", dinv.tail());
    importBusybox(dinv.dockerHost);
  });
  after(async () => {
    await dinv?.kill();
  });

  test(`docker version reports a server of major >= ${MIN_ENGINE.dockerd}; docker info a containerd of major >= ${MIN_ENGINE.containerd} and runc`, () => {
    const server = docker(["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]);
    assert.equal(server.code, 0, server.stderr);
    const [version, api] = server.stdout.trim().split(" ");
    assert.ok(major(version!) >= MIN_ENGINE.dockerd, `server ${version}`);
    assert.ok(Number(api) >= 1.51, `API ${api}`);
    const info = docker(["info", "--format", "{{json .ContainerdCommit}} {{json .RuncCommit}} {{.ServerVersion}}"]);
    assert.equal(info.code, 0, info.stderr);
    const components = docker(["version", "--format", "{{range .Server.Components}}{{.Name}}={{.Version}} {{end}}"]).stdout;
    const containerd = /containerd=v?(\d+)\.(\d+)/.exec(components);
    assert.ok(containerd && Number(containerd[1]) >= MIN_ENGINE.containerd, components);
    assert.match(components, /runc=\d+\.\d+/);
  });

  test("an rshared bind works and propagates a mount made in one container to another (/ is a shared mount, as in docker:dind)", () => {
    const made = docker(["run", "--rm", "--privileged", "-v", "/srv/prop:/prop:rshared", BUSYBOX, "sh", "-c", "mkdir -p /prop/sub && mount -t tmpfs t /prop/sub && echo propagated > /prop/sub/f"]);
    assert.equal(made.code, 0, made.stderr);
    const seen = docker(["run", "--rm", "-v", "/srv/prop:/prop:rslave", BUSYBOX, "cat", "/prop/sub/f"]);
    assert.equal(seen.code, 0, seen.stderr);
    assert.equal(seen.stdout, "propagated\n");
  });

  test("cgroup limits reach the container: memory, CPU and pids", () => {
    const run = docker(["run", "--rm", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "32", BUSYBOX, "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/pids.max"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${64 * 1024 * 1024}\n50000 100000\n32\n`);
  });

  test("this machine's Debian 12 docker CLI (20.10) negotiates an older API and runs a container", (t) => {
    if (!existsSync(OLD_CLI)) return t.skip(`${OLD_CLI} is not installed`);
    const env = { ...process.env, DOCKER_HOST: dinv.dockerHost };
    const client = spawnSync(OLD_CLI, ["version", "--format", "{{.Client.Version}} {{.Client.APIVersion}} {{.Server.Version}}"], { env, encoding: "utf8" });
    assert.equal(client.status, 0, client.stderr);
    const [clientVersion, api, serverVersion] = client.stdout.trim().split(" ");
    assert.equal(major(clientVersion!), 20, client.stdout);
    assert.equal(api, "1.41");
    assert.ok(major(serverVersion!) >= MIN_ENGINE.dockerd);
    const run = spawnSync(OLD_CLI, ["run", "--rm", BUSYBOX, "echo", "old-client"], { env, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, "old-client\n");
  });
});

describe("the containerd image store (DINV_DOCKERD_CONFIG features.containerd-snapshotter)", () => {
  let dinv: DinvProcess;
  let registry: TestRegistry;
  const context = mkdtempSync(join(tmpdir(), "dinv-snapshotter-"));
  const docker = (args: string[], input?: Buffer) => clientDocker(dinv.dockerHost, args, input ? { input } : {});

  before(async () => {
    registry = await TestRegistry.start();
    dinv = await DinvProcess.create({ DINV_DOCKERD_CONFIG: '{"features":{"containerd-snapshotter":true}}', DINV_INSECURE_REGISTRIES: registry.fromGuest });
    dinv.start();
    assert.equal((await dinv.waitUntilSettled()).phase, "ready", dinv.tail());
    importBusybox(dinv.dockerHost);
    writeFileSync(join(context, "Dockerfile"), `FROM ${BUSYBOX}\nRUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/n; wc -l < /cache/n > /n'\nRUN <<EOF\necho snapshotter > /which\nEOF\nCMD ["cat", "/which", "/n"]\n`);
  });
  after(async () => {
    await dinv?.kill();
    registry?.stop();
  });

  test("dockerd stores images in containerd (docker info's driver-type)", () => {
    const info = docker(["info", "--format", "{{json .DriverStatus}}"]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /io\.containerd\.snapshotter\.v1/);
  });

  test("build, run, push, pull, save and load", () => {
    const build = docker(["build", "--progress=plain", "-t", "dinv-test/cs", context]);
    assert.equal(build.code, 0, build.stderr);
    assert.equal(docker(["run", "--rm", "dinv-test/cs"]).stdout, "snapshotter\n1\n");
    const ref = `${registry.fromGuest}/dinv-test/cs:1`;
    assert.equal(docker(["tag", "dinv-test/cs", ref]).code, 0);
    const push = docker(["push", ref]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal(docker(["image", "rm", ref, "dinv-test/cs"]).code, 0);
    const pull = docker(["pull", ref]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal(docker(["run", "--rm", ref]).stdout, "snapshotter\n1\n");
    const saved = spawnSync(join(import.meta.dirname, "../../build/clients/bin/docker"), ["save", ref], { env: { ...process.env, DOCKER_HOST: dinv.dockerHost }, maxBuffer: 256 * 1024 * 1024 });
    assert.equal(saved.status, 0, String(saved.stderr));
    assert.equal(docker(["image", "rm", ref]).code, 0);
    const load = docker(["load"], saved.stdout);
    assert.equal(load.code, 0, load.stderr);
    assert.match(load.stdout, new RegExp(`Loaded image: ${ref.replace(/[.]/g, "\\.")}`));
    assert.equal(docker(["run", "--rm", ref]).stdout, "snapshotter\n1\n");
  });

  test("the images are on the docker disk: a restart of dinv keeps them", async () => {
    assert.equal((await dinv.stop()).code, 0, dinv.tail());
    dinv.start();
    assert.equal((await dinv.waitUntilSettled()).phase, "ready", dinv.tail());
    assert.equal(docker(["run", "--rm", `${registry.fromGuest}/dinv-test/cs:1`]).stdout, "snapshotter\n1\n");
  });
});
