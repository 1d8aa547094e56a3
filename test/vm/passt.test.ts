// VM suite, reduced for DINV_NET=passt: the guest network and every forward go through passt
// instead of QEMU's SLIRP; boot, the docker API forward, a published port, a clean stop that also
// ends passt. (No DNS lookup: it would leave this machine for its resolver.)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { docker, fetchBody, importBusybox } from "../helpers/docker-cli.js";
import { DinvProcess, freePort } from "../helpers/dinv-process.js";

describe("DINV_NET=passt", () => {
  let dinv: DinvProcess;
  let port: number;

  before(async () => {
    port = await freePort();
    dinv = await DinvProcess.create({ DINV_NET: "passt", DINV_TCP_PORTS: String(port) });
    dinv.start();
  });

  after(async () => {
    await dinv?.kill();
  });

  test("boots to ready with passt, not SLIRP: no hostfwd on QEMU's command line, passt running", async () => {
    const state = await dinv.waitUntilSettled();
    assert.equal(state.phase, "ready", dinv.tail());
    assert.ok(dinv.logs.some((l) => l.msg === "the guest network and port forwards use passt"), dinv.tail());
    const pid = Number(readFileSync(join(dinv.env.DINV_RUN_DIR!, "passt.pid"), "utf8"));
    assert.ok(existsSync(`/proc/${pid}`), "passt runs");
    const qemuPid = Number(readFileSync(join(dinv.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
    const cmdline = readFileSync(`/proc/${qemuPid}/cmdline`, "utf8").split("\0");
    assert.ok(cmdline.some((a) => a.startsWith("stream,id=net0,server=off,addr.type=unix")), cmdline.join(" "));
    assert.ok(!cmdline.some((a) => a.includes("hostfwd")));
  });

  test("the docker API forward and a published DINV_TCP_PORTS port answer through passt", async () => {
    const version = docker(dinv.dockerHost, ["version", "--format", "{{.Server.Os}}"]);
    assert.equal(version.stdout.trim(), "linux", version.stderr);
    importBusybox(dinv.dockerHost);
    const run = docker(dinv.dockerHost, ["run", "-d", "-p", `${port}:8080`, "dinv-test/busybox", "sh", "-c", "mkdir /www && echo via passt > /www/index.html && exec httpd -f -p 8080 -h /www"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await fetchBody(`http://127.0.0.1:${port}/`), "via passt\n");
  });

  test("stops cleanly, and passt ends with QEMU", async () => {
    const pid = Number(readFileSync(join(dinv.env.DINV_RUN_DIR!, "passt.pid"), "utf8"));
    const { code } = await dinv.stop("SIGTERM");
    assert.equal(code, 0, dinv.tail());
    assert.ok(!existsSync(`/proc/${pid}`), "passt is gone");
  });
});
