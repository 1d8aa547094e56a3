// VM suite: ports the guest's containers publish reach the launcher side by themselves, as users
// of docker run -p and testcontainers expect. One guest; its forwards listen on 127.0.0.2
// (DINV_BIND_ADDR), so a port the guest bound to its loopback only, which the launcher publishes
// on 127.0.0.1 only, can be told apart without leaving this machine's loopback.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { docker, importBusybox } from "../helpers/docker-cli.js";
import { DinvProcess, freePort } from "../helpers/dinv-process.js";

const IMAGE = "dinv-test/tools";
const BIND = "127.0.0.2";

/** GET a URL once; the body, or "" when nothing answers. */
const get = (url: string) => fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => "");

/** Poll a URL until it answers (at most ~10 s): the body, or "". */
async function body(url: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = await get(url);
    if (text) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  return "";
}

/** Poll until a URL stops answering (at most ~10 s). */
async function gone(url: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!(await get(url))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const httpd = (text: string) => ["sh", "-c", `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`];

describe("automatic publishing", () => {
  let dinv: DinvProcess;
  const run = (...args: string[]) => docker(dinv.dockerHost, args);

  before(async () => {
    dinv = await DinvProcess.create({ DINV_BIND_ADDR: BIND });
    dinv.start();
    const state = await dinv.waitUntilSettled();
    assert.equal(state.phase, "ready", dinv.tail());
    importBusybox(dinv.dockerHost, IMAGE, ["/usr/bin/socat"]);
  });

  after(async () => {
    await dinv?.kill();
  });

  test("docker run -p HOST:80 answers from the launcher side with no variable set, and stops after docker rm -f", async () => {
    const port = await freePort();
    assert.equal(run("run", "-d", "--name", "web", "-p", `${port}:80`, IMAGE, ...httpd("published")).code, 0);
    assert.equal(await body(`http://${BIND}:${port}/`), "published\n");
    const state = dinv.state()!;
    assert.ok(state.forwards.some((f) => f.source === "auto" && f.port === port && f.container === "web" && f.address === BIND), JSON.stringify(state.forwards));
    assert.match(dinv.cli(["status"]).stdout, new RegExp(`tcp ${BIND.replace(/\./g, "\\.")}:${port} -> guest ${port} {2}\\(web\\)`));
    assert.equal(run("rm", "-f", "web").code, 0);
    assert.ok(await gone(`http://${BIND}:${port}/`), "the forward is gone with the container");
    assert.ok(!dinv.state()!.forwards.some((f) => f.port === port));
  });

  test("docker run -P: a random port, forwarded as docker reports it", async () => {
    const started = run("run", "-d", "--name", "random", "-P", "--expose", "80", IMAGE, ...httpd("random"));
    assert.equal(started.code, 0, started.stderr);
    const port = run("port", "random", "80/tcp").stdout.split("\n")[0]!.split(":").at(-1);
    assert.match(port ?? "", /^\d+$/);
    assert.equal(await body(`http://${BIND}:${port}/`), "random\n");
    run("rm", "-f", "random");
  });

  test("a UDP published port round-trips", async () => {
    const port = await freePort();
    assert.equal(run("run", "-d", "--name", "udp", "-p", `${port}:7/udp`, IMAGE, "socat", "UDP4-RECVFROM:7,fork", "PIPE").code, 0);
    const socket = createSocket("udp4");
    try {
      let reply: string | undefined;
      for (let i = 0; i < 50 && reply === undefined; i++) {
        reply = await new Promise<string | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), 200);
          socket.once("message", (m) => {
            clearTimeout(timer);
            resolve(m.toString());
          });
          socket.send("ping-udp", port, BIND);
        });
      }
      assert.equal(reply, "ping-udp");
    } finally {
      socket.close();
      run("rm", "-f", "udp");
    }
  });

  test("-p 127.0.0.1:X:Y is published on the launcher's loopback only", async () => {
    const port = await freePort();
    assert.equal(run("run", "-d", "--name", "local", "-p", `127.0.0.1:${port}:80`, IMAGE, ...httpd("local-only")).code, 0);
    assert.equal(await body(`http://127.0.0.1:${port}/`), "local-only\n");
    assert.equal(await get(`http://${BIND}:${port}/`), "", "not on DINV_BIND_ADDR");
    run("rm", "-f", "local");
  });

  test("a port already taken on the launcher side is reported with the container, nothing crashes, and a later set gets it", async () => {
    const port = await freePort();
    const squatter: Server = createServer((s) => s.end("squatter\n"));
    await new Promise<void>((r) => squatter.listen(port, BIND, r));
    try {
      assert.equal(run("run", "-d", "--name", "clash", "-p", `${port}:80`, IMAGE, ...httpd("clash")).code, 0);
      let refused = "";
      for (let i = 0; i < 100 && !refused; i++) {
        refused = JSON.stringify(dinv.state()!.refused.filter((r) => r.port === port));
        if (refused === "[]") refused = "";
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(refused, new RegExp(`"container":"clash","reason":"port ${port} is already in use`));
      assert.ok(dinv.logs.some((l) => l.msg.includes(`cannot publish tcp ${BIND}:${port} for container clash`)));
      assert.equal(dinv.cli(["health"]).code, 0, "the launcher and the guest are fine");
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    // The set changes (another container): the taken port is tried again, and now it opens.
    assert.equal(run("run", "-d", "--name", "other", "-p", `${await freePort()}:80`, IMAGE, ...httpd("other")).code, 0);
    assert.equal(await body(`http://${BIND}:${port}/`), "clash\n");
    run("rm", "-f", "clash", "other");
  });

  test("dockerd killed and restarted: the forwards follow (gone while it is down, back with the restarted container)", async () => {
    const port = await freePort();
    assert.equal(run("run", "-d", "--name", "survivor", "--restart", "always", "-p", `${port}:80`, IMAGE, ...httpd("survivor")).code, 0);
    assert.equal(await body(`http://${BIND}:${port}/`), "survivor\n");
    run("run", "--rm", "--privileged", "--pid=host", IMAGE, "sh", "-c", "kill -9 $(pidof dockerd)");
    const deadline = Date.now() + 180_000;
    let sawGone = false;
    while (Date.now() < deadline) {
      const state = dinv.state()!;
      if (!state.forwards.some((f) => f.port === port)) sawGone = true;
      if (sawGone && state.phase === "ready" && state.forwards.some((f) => f.port === port)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(sawGone, "the forward went away with dockerd");
    assert.equal(await body(`http://${BIND}:${port}/`), "survivor\n");
    run("rm", "-f", "survivor");
  });

  test("testcontainers-node 11 with Ryuk disabled: a GenericContainer with an exposed port, Wait.forListeningPorts, the body fetched", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { DOCKER_HOST: dinv.dockerHost, TESTCONTAINERS_RYUK_DISABLED: "true" });
    try {
      const { GenericContainer, Wait } = await import("testcontainers");
      const container = await new GenericContainer(IMAGE)
        .withExposedPorts(80)
        .withCommand(httpd("from-testcontainers"))
        .withWaitStrategy(Wait.forListeningPorts())
        .withStartupTimeout(120_000)
        .start();
      try {
        const url = `http://${container.getHost()}:${container.getMappedPort(80)}/`;
        assert.equal(await body(url), "from-testcontainers\n");
      } finally {
        await container.stop();
      }
    } finally {
      process.env = saved;
    }
  });
});
