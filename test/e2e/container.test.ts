// Container end-to-end suite: the dinv image in a real Docker engine, driven with the commands of
// the original DinV README. No --privileged, no host socket; inner images come from the test
// machine with docker save | docker load; nothing beyond loopback.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLIENT_DOCKER, CLIENT_DOCKER_CONFIG } from "../helpers/clients.js";
import { fetchBody, testRootTar } from "../helpers/docker-cli.js";
import { freePort, REPO } from "../helpers/dinv-process.js";
import { KVM_DEVICE, TestDockerd } from "../helpers/test-dockerd.js";
import { MIN_ENGINE } from "../../shared/constants.js";
import { readmeVersionsLine, upstreamVersion, type GuestVersions, type ImageVersions } from "../../host/versions.js";
import { chooseAccel, probeKvm } from "../../host/qemu/accel.js";

const IMAGE = "dinv:latest";
const INNER = "dinv-test/busybox:latest";

describe("the dinv container image", { skip: process.getuid?.() !== 0 ? "needs root (starts its own dockerd)" : false }, () => {
  let engine: TestDockerd;
  const name = `dinv-e2e-${process.pid}`;
  const volume = `dinv-e2e-docker-${process.pid}`;
  const ciNet = `dinv-e2e-ci-${process.pid}`;
  const data = mkdtempSync(join(tmpdir(), "dinv-e2e-data-"));
  let apiPort: number;
  let healthSeen: string[] = [];
  let webPort: number;
  let composePort: number;
  /**
   * The containers' grace (DINV_SHUTDOWN_TIMEOUT) of the main container, s. Under TCG the guest's work after
   * it (dockerd and containerd reaping the killed containers and taking their network down, the unmount)
   * takes ~4-5 s on these machines, so the default 5 s would leave none of Docker's 10 s for it; under KVM,
   * where that work is well under a second, the default.
   */
  let shutdownTimeout = 5;
  const exec = (...args: string[]) => engine.docker(["exec", name, ...args]);

  /** Poll until healthy; the health states seen on the way, in order, without repeats. */
  async function waitHealthy(container: string, timeoutMs = 600_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let status = "";
    const seen: string[] = [];
    while (Date.now() < deadline) {
      status = engine.docker(["inspect", "--format", "{{.State.Health.Status}} {{.State.Running}}", container]).stdout.trim();
      const health = status.split(" ")[0]!;
      if (seen.at(-1) !== health) seen.push(health);
      if (status === "healthy true") return seen;
      if (status.endsWith("false")) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    throw new Error(`${container} not healthy (${status}); logs:\n${engine.docker(["logs", "--tail", "60", container]).stderr}`);
  }

  before(async () => {
    engine = await TestDockerd.start();
    const built = spawnSync(process.execPath, ["scripts/image.mjs"], { cwd: REPO, env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    assert.equal(built.status, 0, `npm run image failed: ${built.stdout}`);
    assert.equal(engine.docker(["import", "--change", 'CMD ["/bin/sh"]', "-", INNER], { input: testRootTar() }).code, 0);
    writeFileSync(join(data, "hello.txt"), "Hello world\n");
    chmodSync(data, 0o777);
    if (chooseAccel("auto", await probeKvm()).accel === "tcg") shutdownTimeout = 3;
    apiPort = await freePort();
    webPort = await freePort();
    composePort = await freePort();
    const run = engine.docker([
      "run", "-d", "--name", name, ...KVM_DEVICE,
      "-p", `127.0.0.1:${apiPort}:2375`,
      "-e", "DINV_TCP_PORTS=8080;8081", "-p", `127.0.0.1:${webPort}:8080`, "-p", `127.0.0.1:${composePort}:8081`,
      "-v", `${data}:/data`, "-e", "DINV_MOUNTS=/data",
      // Asked for, but refused by Docker's default seccomp profile: the fallback to SLIRP is tested.
      "-e", "DINV_NET=passt",
      "-v", `${volume}:/docker`,
      "-e", `DINV_SHUTDOWN_TIMEOUT=${shutdownTimeout}`,
      IMAGE,
    ]);
    assert.equal(run.code, 0, run.stderr);
    healthSeen = await waitHealthy(name);
  });

  after(async () => {
    if (!engine) return;
    for (const c of [name, `${name}-nokvm`, `${name}-tls`]) engine.docker(["rm", "-f", c]);
    engine.docker(["network", "rm", ciNet]);
    engine.docker(["volume", "rm", "-f", volume]);
    await engine.stop();
  });

  test("runs unprivileged, with no host socket, healthy only once dockerd in the guest answers", () => {
    // The health check said "starting" (dinv health exits non-zero while the guest boots) before "healthy".
    assert.deepEqual(healthSeen, ["starting", "healthy"]);
    const inspect = engine.docker(["inspect", "--format", "{{.HostConfig.Privileged}} {{json .Mounts}}", name]).stdout;
    assert.match(inspect, /^false /);
    assert.doesNotMatch(inspect, /docker\.sock/);
    assert.equal(exec("dinv", "health").code, 0);
  });

  test("1. docker exec dinv docker run --rm IMAGE echo hi", () => {
    const load = spawnSync("sh", ["-c", `docker save ${INNER} | docker exec -i ${name} docker load`], { env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8" });
    assert.equal(load.status, 0, load.stderr);
    const hi = exec("docker", "run", "--rm", INNER, "echo", "hi");
    assert.equal(hi.stdout, "hi\n", hi.stderr);
  });

  test("the sidecar pattern: a job container on a user-defined network runs testcontainers against tcp://docker:2375", () => {
    // As GitLab's `services:` and GitHub's service containers do: dinv reachable by an alias on the job's network.
    assert.equal(engine.docker(["network", "create", "--subnet", "10.213.7.0/24", ciNet]).code, 0);
    assert.equal(engine.docker(["network", "connect", "--alias", "docker", ciNet, name]).code, 0);
    const job = mkdtempSync(join(tmpdir(), "dinv-e2e-job-"));
    writeFileSync(join(job, "job.mjs"), [
      'import { GenericContainer, Wait } from "testcontainers";',
      `const c = await new GenericContainer(${JSON.stringify(INNER)}).withExposedPorts(80)`,
      '  .withCommand(["sh", "-c", "mkdir /www && echo from-the-sidecar > /www/index.html && exec httpd -f -p 80 -h /www"])',
      "  .withWaitStrategy(Wait.forListeningPorts()).withStartupTimeout(120000).start();",
      "const r = await fetch(`http://${c.getHost()}:${c.getMappedPort(80)}/`);",
      "process.stdout.write(await r.text());",
      "await c.stop();",
      "",
    ].join("\n"));
    const ran = engine.docker([
      "run", "--rm", "--network", ciNet,
      "-e", "DOCKER_HOST=tcp://docker:2375", "-e", "TESTCONTAINERS_HOST_OVERRIDE=docker", "-e", "TESTCONTAINERS_RYUK_DISABLED=true",
      "-v", `${join(REPO, "node_modules")}:/job/node_modules:ro`, "-v", `${join(job, "job.mjs")}:/job/job.mjs:ro`, "-w", "/job",
      "--entrypoint", "node", IMAGE, "job.mjs",
    ], { timeoutMs: 300_000 });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "from-the-sidecar\n");
  });

  test("2. the management port: docker -H tcp://127.0.0.1:PORT ps and DOCKER_HOST=... docker ps", () => {
    const viaFlag = spawnSync("docker", ["-H", `tcp://127.0.0.1:${apiPort}`, "ps"], { encoding: "utf8" });
    assert.equal(viaFlag.status, 0, viaFlag.stderr);
    assert.match(viaFlag.stdout, /^CONTAINER ID\s+IMAGE/);
    const viaEnv = spawnSync("docker", ["ps"], { encoding: "utf8", env: { ...process.env, DOCKER_HOST: `tcp://127.0.0.1:${apiPort}` } });
    assert.equal(viaEnv.status, 0, viaEnv.stderr);
  });

  test("3. DINV_TCP_PORTS=8080: a web server in the guest is reachable from the test machine (two hops)", async () => {
    const started = exec("docker", "run", "-d", "-p", "8080:80", INNER, "sh", "-c", "mkdir /www && echo two-hops > /www/index.html && httpd -f -p 80 -h /www");
    assert.equal(started.code, 0, started.stderr);
    assert.equal(await fetchBody(`http://127.0.0.1:${webPort}/`), "two-hops\n");
  });

  test("docker exec dinv docker: the CLI matches the guest's dockerd and has the buildx and compose plugins", () => {
    const versions = exec("docker", "version", "--format", "{{.Client.Version}} {{.Server.Version}}");
    const [client, server] = versions.stdout.trim().split(" ");
    assert.equal(client, server, versions.stderr);
    assert.ok(Number(server!.split(".")[0]) >= MIN_ENGINE.dockerd, server);
    const buildx = /github\.com\/docker\/buildx v?(\d+)\.(\d+)/.exec(exec("docker", "buildx", "version").stdout);
    assert.ok(buildx && (Number(buildx[1]) > 0 || Number(buildx[2]) >= 29), `buildx ${buildx?.[0]}`);
    const compose = /Docker Compose version v?(\d+)\.(\d+)/.exec(exec("docker", "compose", "version").stdout);
    assert.ok(compose && (Number(compose[1]) > 2 || (Number(compose[1]) === 2 && Number(compose[2]) >= 40)), `compose ${compose?.[0]}`);
  });

  test("dinv version --json in the image: the guest's and the image's versions, as the README's versions line names them", () => {
    const printed = exec("dinv", "version", "--json");
    assert.equal(printed.code, 0, printed.stderr);
    const report = JSON.parse(printed.stdout) as { guest: GuestVersions; image: ImageVersions };
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const line = /<!-- versions -->(.*?)<!-- \/versions -->/s.exec(readme)?.[1]?.replace(/\s+/g, " ").trim();
    assert.equal(line, readmeVersionsLine(report.guest, report.image));
    // What the image's CLI says is what the manifest says.
    // The CLI prints Debian's repack suffix too (28.5.2+dfsg4): the upstream part is compared.
    assert.equal(exec("docker", "version", "--format", "{{.Client.Version}}").stdout.trim().replace(/[+~].*$/, ""), upstreamVersion(report.image.dockerCli));
  });

  test("docker compose up --wait: two services with healthchecks, healthy before it returns", () => {
    const compose = [
      "services:",
      "  db:",
      `    image: ${INNER}`,
      "    pull_policy: never",
      '    command: ["sh", "-c", "sleep 2; touch /ready; exec sleep 600"]',
      "    healthcheck: { test: [\"CMD\", \"test\", \"-f\", \"/ready\"], interval: 1s, retries: 30 }",
      "  app:",
      `    image: ${INNER}`,
      "    pull_policy: never",
      "    depends_on: { db: { condition: service_healthy } }",
      '    command: ["sh", "-c", "touch /ready; exec sleep 600"]',
      "    healthcheck: { test: [\"CMD\", \"test\", \"-f\", \"/ready\"], interval: 1s, retries: 30 }",
      "",
    ].join("\n");
    assert.equal(engine.docker(["exec", "-i", name, "sh", "-c", "mkdir -p /tmp/wait && cat > /tmp/wait/compose.yaml"], { input: Buffer.from(compose) }).code, 0);
    const up = exec("docker", "compose", "-f", "/tmp/wait/compose.yaml", "up", "-d", "--wait", "--wait-timeout", "180");
    assert.equal(up.code, 0, up.stderr);
    const health = exec("docker", "compose", "-f", "/tmp/wait/compose.yaml", "ps", "--format", "{{.Service}}={{.Health}}");
    assert.deepEqual(health.stdout.trim().split("\n").sort(), ["app=healthy", "db=healthy"]);
    assert.equal(exec("docker", "compose", "-f", "/tmp/wait/compose.yaml", "down", "-t", "1").code, 0);
  });

  test("docker buildx bake: two targets of one file built offline", () => {
    const put = (file: string, text: string) => assert.equal(engine.docker(["exec", "-i", name, "sh", "-c", `mkdir -p /tmp/bake && cat > /tmp/bake/${file}`], { input: Buffer.from(text) }).code, 0);
    put("Dockerfile", `FROM ${INNER}\nARG WHO\nRUN echo "$WHO" > /who\nCMD ["cat", "/who"]\n`);
    put("docker-bake.hcl", ['group "default" {', '  targets = ["one", "two"]', "}", ...["one", "two"].flatMap((t) => [`target "${t}" {`, `  tags = ["dinv-e2e/bake-${t}"]`, `  args = { WHO = "${t}" }`, "}"]), ""].join("\n"));
    const bake = exec("sh", "-c", "cd /tmp/bake && docker buildx bake --progress=plain --load");
    assert.equal(bake.code, 0, bake.stderr);
    assert.equal(exec("docker", "run", "--rm", "dinv-e2e/bake-one").stdout, "one\n");
    assert.equal(exec("docker", "run", "--rm", "dinv-e2e/bake-two").stdout, "two\n");
  });

  test("BuildKit by default: a cache mount and a heredoc build offline from a local image", () => {
    const build = writeAndBuild(1);
    assert.equal(build.code, 0, build.stderr);
    assert.match(build.stderr, /#\d+ \[stage-0 2\/3\] RUN --mount=type=cache/);
    assert.equal(exec("docker", "run", "--rm", "dinv-e2e/built").stdout, "1\nfrom-a-heredoc\n");
  });

  test("docker compose up -d: two services, one reaching the other by name, published through DINV_TCP_PORTS", async () => {
    const compose = [
      "services:",
      "  backend:",
      `    image: ${INNER}`,
      "    pull_policy: never",
      '    command: ["sh", "-c", "mkdir /www && echo from-the-backend > /www/index.html && httpd -f -p 80 -h /www"]',
      "  frontend:",
      `    image: ${INNER}`,
      "    pull_policy: never",
      "    depends_on: [backend]",
      '    command: ["sh", "-c", "mkdir /www; until wget -qO /www/index.html http://backend/; do sleep 1; done; httpd -f -p 80 -h /www"]',
      '    ports: ["8081:80"]',
      "",
    ].join("\n");
    assert.equal(engine.docker(["exec", "-i", name, "sh", "-c", "mkdir -p /tmp/app && cat > /tmp/app/compose.yaml"], { input: Buffer.from(compose) }).code, 0);
    const up = exec("docker", "compose", "-f", "/tmp/app/compose.yaml", "up", "-d");
    assert.equal(up.code, 0, up.stderr);
    assert.equal(await fetchBody(`http://127.0.0.1:${composePort}/`, 120), "from-the-backend\n");
    assert.equal(exec("docker", "compose", "-f", "/tmp/app/compose.yaml", "down").code, 0);
  });

  test("DINV_NET=passt under Docker's default seccomp: passt cannot sandbox itself, the log says so, the forwards run over SLIRP", () => {
    const logs = engine.docker(["logs", name]).stderr;
    assert.match(logs, /DINV_NET=passt: passt exited at start: .*(Couldn't|Unable to) create user namespace.*using SLIRP/);
    assert.doesNotMatch(logs, /port forwards use passt/);
  });

  test("4. DINV_MOUNTS=/data: the guest reads hello.txt and writes a file the test machine sees", () => {
    assert.equal(exec("docker", "run", "--rm", "-v", "/data:/data", INNER, "cat", "/data/hello.txt").stdout, "Hello world\n");
    assert.equal(exec("docker", "run", "--rm", "-v", "/data:/data", INNER, "sh", "-c", "echo from-inner > /data/back.txt").code, 0);
    assert.equal(readFileSync(join(data, "back.txt"), "utf8"), "from-inner\n");
    // Docker's default seccomp profile refuses what virtiofsd needs: 9p, and the log says why.
    assert.match(engine.docker(["logs", name]).stderr, /DINV_MOUNTS use 9p, not the faster virtio-fs: unshare\(CLONE_FS\) is refused/);
  });

  test("the container's /var/run/docker.sock reaches the guest's dockerd", () => {
    const result = exec("sh", "-c", "DOCKER_HOST=unix:///var/run/docker.sock docker info --format '{{.Name}}'");
    assert.equal(result.stdout.trim(), "dinv", result.stderr);
  });

  test("docker logs shows readable boot progress and the guest console", () => {
    const logs = engine.docker(["logs", name]);
    const text = logs.stdout + logs.stderr;
    assert.match(text, /dinv ready: dockerd .* answers at tcp:\/\/127\.0\.0\.1:2375/);
    assert.match(text, /dinv-initramfs: started/);
    // The image's QEMU gives a TCG guest the CPU the agent's startup snapshot was written for;
    // under KVM the guest sees the host's CPU and the init starts the agent from its bundle by design.
    const accel = text.match(/dinv ready: dockerd .* \((kvm|tcg)\)/)?.[1];
    assert.ok(accel, "the ready line names the accelerator");
    if (accel === "tcg") {
      assert.match(text, /dinv-agent: started at [\d.]+s \(from its startup snapshot, [\d.]+ s of CPU\)/);
      assert.doesNotMatch(text, /startup snapshot did not load/);
    } else assert.match(text, /dinv-agent: started at [\d.]+s \((from its startup snapshot, )?[\d.]+ s of CPU\)/);
  });

  /** Write the BuildKit test's Dockerfile into the container and build it (BUST changes its RUN step's key). */
  function writeAndBuild(bust: number) {
    const dockerfile = [
      `FROM ${INNER}`,
      "ARG BUST=1",
      `RUN --mount=type=cache,target=/cache sh -c 'echo "run $BUST" >> /cache/runs; wc -l < /cache/runs > /runs'`,
      "RUN <<EOF",
      "echo from-a-heredoc > /heredoc",
      "EOF",
      'CMD ["cat", "/runs", "/heredoc"]',
      "",
    ].join("\n");
    engine.docker(["exec", "-i", name, "sh", "-c", "mkdir -p /tmp/ctx && cat > /tmp/ctx/Dockerfile"], { input: Buffer.from(dockerfile) });
    return exec("docker", "build", "--progress=plain", "--build-arg", `BUST=${bust}`, "-t", "dinv-e2e/built", "/tmp/ctx");
  }

  test("5. docker stop with Docker's default grace (10 s) and an inner container that ignores SIGTERM: a clean guest shutdown, exit 0; docker start keeps the images", async () => {
    // PID 1 of a container ignores SIGTERM unless it handles it: this one never exits by itself.
    const stubborn = exec("docker", "run", "-d", "--name", "ignores-sigterm", INNER, "sh", "-c", "trap '' TERM; while :; do sleep 1; done");
    assert.equal(stubborn.code, 0, stubborn.stderr);
    const t0 = Date.now();
    assert.equal(engine.docker(["stop", name]).code, 0);
    const took = Date.now() - t0;
    // 137 would be Docker's SIGKILL at the end of its grace period.
    assert.equal(engine.docker(["inspect", "--format", "{{.State.ExitCode}}", name]).stdout.trim(), "0", `docker stop took ${took} ms; logs:\n${engine.docker(["logs", "--tail", "20", name]).stderr}`);
    console.log(`docker stop (default grace) with a SIGTERM-ignoring inner container, DINV_SHUTDOWN_TIMEOUT=${shutdownTimeout}: ${took} ms`);
    assert.ok(took >= shutdownTimeout * 1000, `the inner containers had their ${shutdownTimeout} s: the stop took ${took} ms`);
    assert.match(engine.docker(["logs", "--tail", "20", name]).stderr, /guest stopped cleanly/);
    assert.equal(engine.docker(["start", name]).code, 0);
    await waitHealthy(name);
    assert.match(exec("docker", "image", "ls", "--format", "{{.Repository}}").stdout, /^dinv-test\/busybox$/m);
    // The inner container was killed after its grace (and that was recorded), not left behind.
    assert.equal(exec("docker", "inspect", "--format", "{{.State.ExitCode}}", "ignores-sigterm").stdout.trim(), "137");
    exec("docker", "rm", "-f", "ignores-sigterm");
  });

  test("BuildKit's cache survives docker stop / docker start: CACHED steps, and the cache mount keeps its files", () => {
    const again = writeAndBuild(1);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /RUN --mount=type=cache.*\n#\d+ CACHED/);
    assert.match(again.stderr, /RUN <<EOF.*\n#\d+ CACHED/);
    const busted = writeAndBuild(2);
    assert.equal(busted.code, 0, busted.stderr);
    assert.equal(exec("docker", "run", "--rm", "dinv-e2e/built").stdout, "2\nfrom-a-heredoc\n");
  });

  test("6. without --device /dev/kvm it works under TCG and says so; CMD runs once ready and sets the exit code", () => {
    const result = engine.docker(["run", "--rm", "--name", `${name}-nokvm`, IMAGE, "docker", "info", "--format", "{{.Name}} {{.ServerVersion}}"], { timeoutMs: 600_000 });
    assert.equal(result.code, 0, result.stderr.slice(-3000));
    assert.match(result.stdout, /^dinv \d+\.\d+/m);
    assert.match(result.stderr, /no \/dev\/kvm: running under TCG.*pass --device \/dev\/kvm/);
    const failing = engine.docker(["run", "--rm", IMAGE, "sh", "-c", "exit 7"], { timeoutMs: 600_000 });
    assert.equal(failing.code, 7, failing.stderr.slice(-3000));
  });

  test("warm start with the image's QEMU: dinv warm save into a volume writes a template; fresh containers restore it, two at once from a read-only volume, each its own", async () => {
    const warm = `dinv-e2e-warm-${process.pid}`;
    const pair = [`${name}-warm-a`, `${name}-warm-b`];
    try {
      const saved = engine.docker(["run", "--rm", "-v", `${warm}:/var/cache/dinv`, "--entrypoint", "dinv", IMAGE, "warm", "save"], { timeoutMs: 600_000 });
      assert.equal(saved.code, 0, saved.stderr.slice(-3000));
      assert.match(saved.stderr, /warm state saved in \/var\/cache\/dinv\/.*restores map its RAM file/);
      const t0 = Date.now();
      const restored = engine.docker(["run", "--rm", "-v", `${warm}:/var/cache/dinv`, IMAGE, "docker", "info", "--format", "{{.ServerVersion}} {{.ID}}"], { timeoutMs: 600_000 });
      const took = Date.now() - t0;
      assert.equal(restored.code, 0, restored.stderr.slice(-3000));
      assert.match(restored.stdout, /^\d+\.\d+/m);
      assert.match(restored.stderr, /warm start: the saved VM was loaded \d+ ms after QEMU started \(RAM file mapped\)/, restored.stderr.slice(-3000));
      assert.match(restored.stderr, /dinv ready: .*warm start/);
      console.log(`warm start in the image: docker run to CMD done and the guest stopped in ${took} ms`);

      // Two instances at once from one state, the volume read-only (as job containers mount it).
      for (const c of pair) assert.equal(engine.docker(["run", "-d", "--name", c, ...KVM_DEVICE, "-v", `${warm}:/var/cache/dinv:ro`, IMAGE]).code, 0);
      for (const c of pair) await waitHealthy(c, 300_000);
      const [a, b] = pair as [string, string];
      for (const c of pair) assert.match(engine.docker(["logs", c]).stderr, /RAM file mapped/, `${c} mapped the state's RAM file`);
      // Each restore renews dockerd's engine ID.
      const id = (c: string) => engine.docker(["exec", c, "docker", "info", "--format", "{{.ID}}"]).stdout.trim();
      assert.notEqual(id(a), id(b), "two restores of one state have different engine IDs");
      assert.notEqual(id(a), restored.stdout.trim().split(" ")[1]);
      // Both run containers; what one guest writes the other never sees: a file on its docker disk (a
      // volume), a file in its RAM (the guest's /run, a tmpfs: pages of the shared mapping it copied), dockerd's memory.
      const tar = testRootTar();
      for (const [c, mine] of [[a, "a"], [b, "b"]] as const) {
        const inGuest = (...args: string[]) => engine.docker(["exec", c, "docker", ...args]);
        assert.equal(engine.docker(["exec", "-i", c, "docker", "import", "--change", 'CMD ["/bin/sh"]', "-", INNER], { input: tar }).code, 0);
        const wrote = inGuest("run", "--rm", "-v", "marks:/disk", "-v", "/run:/ram", INNER, "sh", "-c", `echo ${mine} > /disk/only-${mine} && echo ${mine} > /ram/only-${mine} && cat /disk/only-${mine} /ram/only-${mine}`);
        assert.equal(wrote.stdout, `${mine}\n${mine}\n`, wrote.stderr);
        assert.equal(inGuest("network", "create", `only-in-${mine}`).code, 0);
      }
      for (const [c, mine, other] of [[a, "a", "b"], [b, "b", "a"]] as const) {
        const seen = engine.docker(["exec", c, "docker", "run", "--rm", "-v", "marks:/disk", "-v", "/run:/ram", INNER, "sh", "-c", "ls /disk /ram"]).stdout;
        assert.match(seen, new RegExp(`only-${mine}`));
        assert.doesNotMatch(seen, new RegExp(`only-${other}`), `${c} sees the other guest's files`);
        const networks = engine.docker(["exec", c, "docker", "network", "ls", "--format", "{{.Name}}"]).stdout.split("\n");
        assert.ok(networks.includes(`only-in-${mine}`) && !networks.includes(`only-in-${other}`), networks.join(","));
      }
      // The RAM file both map is the file the save wrote, byte for byte.
      const check = engine.docker(["run", "--rm", "-v", `${warm}:/w:ro`, "--entrypoint", "sh", IMAGE, "-c", "cat /w/*/meta.json; sha256sum /w/*/ram.bin"]);
      const digest = /"ram":\s*\{[^}]*?"sha256":\s*"([0-9a-f]{64})"/.exec(check.stdout)?.[1];
      assert.ok(digest, check.stdout.slice(0, 2000));
      assert.match(check.stdout, new RegExp(`^${digest}  /w/`, "m"), "ram.bin unchanged by the instances that map it");
    } finally {
      for (const c of pair) engine.docker(["rm", "-f", c]);
      engine.docker(["volume", "rm", "-f", warm]);
    }
  });

  test("the shared cache: two containers one after the other on one cache volume; the second has the first's image", () => {
    const cache = `dinv-e2e-cache-${process.pid}`;
    const env = ["-v", `${cache}:/var/lib/dinv-cache`, "-e", "DINV_CACHE_DIR=/var/lib/dinv-cache", "-e", "DINV_CACHE_KEY=e2e/main"];
    try {
      const first = engine.docker(["run", "--rm", "-i", ...env, IMAGE, "docker", "import", "-", INNER], { input: testRootTar(), timeoutMs: 600_000 });
      assert.equal(first.code, 0, first.stderr.slice(-3000));
      assert.match(first.stderr, /cache: "e2e\/main" generation 1 promoted at stop/, first.stderr.slice(-3000));
      const second = engine.docker(["run", "--rm", ...env, IMAGE, "docker", "image", "inspect", "--format", "{{.Id}}", INNER], { timeoutMs: 600_000 });
      assert.equal(second.code, 0, second.stderr.slice(-3000));
      assert.match(second.stderr, /cache: docker disk: an overlay of "e2e\/main" generation 1/);
      assert.match(second.stdout, /^sha256:/m);
    } finally {
      engine.docker(["volume", "rm", "-f", cache]);
    }
  });

  test("the compose recipe of docs/recipes.md: dinv healthy first, then a job builds and runs through tcp://dinv:2375", () => {
    const recipes = readFileSync(join(REPO, "docs/recipes.md"), "utf8");
    const yaml = /## docker compose[^\n]*\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(recipes)?.[1];
    assert.ok(yaml, "docs/recipes.md has the compose recipe");
    const project = mkdtempSync(join(tmpdir(), "dinv-e2e-compose-"));
    // On a machine without /dev/kvm the recipe's device line is dropped (docker refuses a missing device): TCG then.
    const devices = /^\s*devices: \["\/dev\/kvm"\]\n/m;
    assert.match(yaml!, devices, "the recipe passes /dev/kvm");
    writeFileSync(join(project, "compose.yaml"), KVM_DEVICE.length ? yaml! : yaml!.replace(devices, ""));
    mkdirSync(join(project, "src"));
    copyFileSync(["/bin/busybox", "/usr/bin/busybox"].find((b) => existsSync(b))!, join(project, "src/busybox"));
    writeFileSync(join(project, "src/Dockerfile"), 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n');
    const compose = (...args: string[]) =>
      spawnSync(CLIENT_DOCKER, ["compose", "-p", `dinv-e2e-${process.pid}`, ...args], { cwd: project, env: { ...process.env, DOCKER_HOST: engine.host, DOCKER_CONFIG: CLIENT_DOCKER_CONFIG }, encoding: "utf8", timeout: 900_000 });
    try {
      const up = compose("up", "--exit-code-from", "job");
      assert.equal(up.status, 0, `${up.stdout.slice(-3000)}\n${up.stderr.slice(-3000)}`);
      assert.match(up.stdout, /hello-from-the-job/);
    } finally {
      compose("down", "-v", "-t", "60");
    }
  });

  describe("a second container: DOCKER_TLS_CERTDIR, and the seccomp profile that enables virtio-fs", () => {
    const tls = `${name}-tls`;
    const certs = mkdtempSync(join(tmpdir(), "dinv-e2e-certs-"));
    const share = mkdtempSync(join(tmpdir(), "dinv-e2e-vfs-"));
    let tlsPort: number;

    before(async () => {
      writeFileSync(join(share, "hello.txt"), "over virtio-fs\n");
      chmodSync(share, 0o777);
      // What a job container that mounts client/ read-write could leave: ca.pem a link to another file.
      mkdirSync(join(certs, "client"));
      writeFileSync(join(certs, "victim.txt"), "not a certificate\n");
      symlinkSync("../victim.txt", join(certs, "client", "ca.pem"));
      tlsPort = await freePort();
      const run = engine.docker([
        "run", "-d", "--name", tls, ...KVM_DEVICE,
        "-e", "DOCKER_TLS_CERTDIR=/certs", "-v", `${certs}:/certs`, "-p", `127.0.0.1:${tlsPort}:2376`,
        "--security-opt", `seccomp=${join(REPO, "image/dinv-seccomp.json")}`, "-v", `${share}:/data`, "-e", "DINV_MOUNTS=/data",
        IMAGE,
      ]);
      assert.equal(run.code, 0, run.stderr);
      await waitHealthy(tls);
      const load = spawnSync("sh", ["-c", `docker save ${INNER} | docker exec -i ${tls} docker load`], { env: { ...process.env, DOCKER_HOST: engine.host }, encoding: "utf8" });
      assert.equal(load.status, 0, load.stderr);
    });

    test("a link planted as client/ca.pem is replaced, not written through: the file it pointed at is unchanged", () => {
      assert.equal(readFileSync(join(certs, "victim.txt"), "utf8"), "not a certificate\n");
      assert.ok(lstatSync(join(certs, "client", "ca.pem")).isFile(), "ca.pem is a regular file now");
      assert.match(readFileSync(join(certs, "client", "ca.pem"), "utf8"), /BEGIN CERTIFICATE/);
    });

    test("7. TLS with client certificates on 2376, plain connections refused, docker exec still works", async () => {
      // Inside the container the docker CLI finds the client certificate by itself, as docker:cli does.
      const inside = engine.docker(["exec", tls, "docker", "info", "--format", "{{.Name}}"]);
      assert.equal(inside.stdout.trim(), "dinv", inside.stderr);
      const plainInside = engine.docker(["exec", tls, "sh", "-c", "DOCKER_HOST=tcp://127.0.0.1:2375 DOCKER_TLS_CERTDIR= docker ps"]);
      assert.notEqual(plainInside.code, 0, "the plain port 2375 must not answer");
      // From the test machine: with the client certificate it works...
      const c = join(certs, "client");
      const withCert = spawnSync("docker", ["--tlsverify", "--tlscacert", join(c, "ca.pem"), "--tlscert", join(c, "cert.pem"), "--tlskey", join(c, "key.pem"), "-H", `tcp://127.0.0.1:${tlsPort}`, "version", "--format", "{{.Server.Version}}"], { encoding: "utf8" });
      assert.equal(withCert.status, 0, withCert.stderr);
      assert.match(withCert.stdout, /^\d+\.\d+/);
      // ...plain HTTP is refused...
      const plain = spawnSync("docker", ["-H", `tcp://127.0.0.1:${tlsPort}`, "ps"], { encoding: "utf8" });
      assert.notEqual(plain.status, 0);
      assert.match(await fetchBody(`http://127.0.0.1:${tlsPort}/_ping`, 1), /HTTP request to an HTTPS server/);
      // ...and TLS without a client certificate is refused by the handshake.
      const noCert = spawnSync("docker", ["--tls", "--tlscacert", join(c, "ca.pem"), "-H", `tcp://127.0.0.1:${tlsPort}`, "ps"], { encoding: "utf8" });
      assert.notEqual(noCert.status, 0, noCert.stdout);
      assert.match(noCert.stderr, /certificate|tls/i);
    });

    test("8. with dinv's seccomp profile DINV_MOUNTS use virtio-fs: read, write back, ownership kept", () => {
      const seen = engine.docker(["exec", tls, "docker", "run", "--rm", "-v", "/data:/data", INNER, "sh", "-c", "grep ' /data ' /proc/mounts; cat /data/hello.txt"]);
      assert.match(seen.stdout, /^dinv0 \/data virtiofs /m, seen.stderr);
      assert.match(seen.stdout, /^over virtio-fs$/m);
      assert.equal(engine.docker(["exec", tls, "docker", "run", "--rm", "-u", "1234:1234", "-v", "/data:/data", INNER, "sh", "-c", "echo back > /data/back.txt"]).code, 0);
      assert.equal(readFileSync(join(share, "back.txt"), "utf8"), "back\n");
      assert.equal(statSync(join(share, "back.txt")).uid, 1234);
      assert.match(engine.docker(["logs", tls]).stderr, /DINV_MOUNTS use virtio-fs/);
    });

    test("virtio-fs with the Rust virtiofsd: root in a container plants no setuid-root binary and no device node on the launcher side", () => {
      const planted = engine.docker(["exec", tls, "docker", "run", "--rm", "-v", "/data:/data", INNER, "sh", "-c", "cp /bin/busybox /data/suid; chmod u+s /data/suid; mknod /data/blk b 8 0; ls -ln /data/suid"]);
      assert.equal(planted.code, 0, planted.stderr);
      // The guest's root created it: the launcher side sees nobody's file, and the guest its own.
      assert.match(planted.stdout, /^-rws\S* +\d+ +0 +0 /m, "the guest sees a file of its root");
      const st = statSync(join(share, "suid"));
      assert.ok(!((st.mode & 0o4000) && st.uid === 0), `no setuid-root file (mode ${st.mode.toString(8)}, uid ${st.uid})`);
      assert.equal(st.uid, 65534, "owned by nobody on the launcher side");
      assert.ok(!existsSync(join(share, "blk")), "no device node");
    });

    test("the TLS container stops cleanly", () => {
      assert.equal(engine.docker(["stop", "-t", "60", tls]).code, 0);
      assert.equal(engine.docker(["inspect", "--format", "{{.State.ExitCode}}", tls]).stdout.trim(), "0");
    });
  });
});
