// VM suite: faults. Crashes lose nothing committed, a killed launcher leaves nothing behind that
// blocks the next start, dockerd is restarted, a full disk recovers, a hung agent never hangs
// the launcher. One guest and its disks go through all of it, in order.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { docker, importBusybox } from "../helpers/docker-cli.js";
import { DinvProcess } from "../helpers/dinv-process.js";

const IMAGE = "dinv-test/tools";

/** e2fsck -fn of a qcow2 image (via a raw copy, so the image itself is only read). */
function fsck(qcow2: string): { clean: boolean; summary: string } {
  const dir = mkdtempSync(join(tmpdir(), "dinv-fsck-"));
  const raw = join(dir, "disk.raw");
  try {
    execFileSync("qemu-img", ["convert", "-U", "-O", "raw", qcow2, raw]);
    const r = spawnSync("e2fsck", ["-fn", raw], { encoding: "utf8" });
    const out = `${r.stdout}${r.stderr}`.trim().split("\n").filter((l) => !/^(Pass \d|e2fsck \d)/.test(l));
    return { clean: r.status === 0, summary: `exit ${r.status}: ${out.slice(0, 8).join(" | ")}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The ext4 feature list of a qcow2 image's filesystem (dumpe2fs -h of a raw copy). */
function features(qcow2: string): string {
  const dir = mkdtempSync(join(tmpdir(), "dinv-features-"));
  const raw = join(dir, "disk.raw");
  try {
    execFileSync("qemu-img", ["convert", "-U", "-O", "raw", qcow2, raw]);
    const out = spawnSync("dumpe2fs", ["-h", raw], { encoding: "utf8" }).stdout;
    return /^Filesystem features:\s*(.*)$/m.exec(out)?.[1] ?? "";
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe("faults", () => {
  let dinv: DinvProcess;
  let host: string;
  let dockerDisk: string;
  const report: Record<string, string> = {};

  before(async () => {
    dinv = await DinvProcess.create({ DINV_DOCKER_SIZE: "2G", DINV_VOLUME_PATH: "/cache", DINV_VOLUME_SIZE: "1G", DINV_DOCKER_SOCK_UID: "1000", DINV_DOCKER_SOCK_GID: "1000", DINV_SHUTDOWN_TIMEOUT: "5" });
    host = dinv.dockerHost;
    dockerDisk = join(dinv.env.DINV_DOCKER_DIR!, "docker.qcow2");
    dinv.start();
    assert.equal((await dinv.waitUntilSettled()).phase, "ready", dinv.tail());
    importBusybox(host, IMAGE);
  });

  after(async () => {
    await dinv?.kill();
    console.log(`fault report: ${JSON.stringify(report)}`);
  });

  test("kill -9 of QEMU during writes: the run fails with the reason (dinv events' last state), the next boot replays the journal, keeps images, containers and synced data", async () => {
    const events = dinv.events();
    const writer = docker(host, ["run", "-d", "--name", "writer", "-v", "/cache:/cache", IMAGE, "sh", "-c", "i=0; while true; do echo $i >> /cache/stream; echo $i >> /layer; i=$((i+1)); done"]);
    assert.equal(writer.code, 0, writer.stderr);
    const marker = docker(host, ["run", "--rm", "-v", "/cache:/cache", IMAGE, "sh", "-c", "echo committed > /cache/marker && sync"]);
    assert.equal(marker.code, 0, marker.stderr);
    await new Promise((r) => setTimeout(r, 2000)); // writes in flight
    const qemuPid = Number(readFileSync(join(dinv.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
    process.kill(qemuPid, "SIGKILL");
    const exit = await dinv.exit!;
    assert.equal(exit.code, 1, "the launcher reports the crash as a failure");
    assert.ok(dinv.messages().some((m) => /QEMU exited unexpectedly/.test(m)));
    assert.equal(await events.exit, 0, "dinv events ends with the launcher");
    const last = events.states().at(-1)!;
    assert.deepEqual([last.phase, last.reason], ["failed", "QEMU exited unexpectedly (guest crash or power-off)"]);
    assert.ok(events.states().some((s) => s.phase === "ready"), "the stream saw the run ready before it failed");
    report.fsckAfterKill = fsck(dockerDisk).summary;
    // The kill left committed but unapplied transactions: the journal needs replaying.
    assert.match(features(dockerDisk), /needs_recovery/, "the docker disk's journal has transactions to replay");

    dinv.start();
    assert.equal((await dinv.waitUntilSettled()).phase, "ready", dinv.tail());
    // The guest's kernel replayed it when the agent mounted the disk.
    assert.match(docker(host, ["run", "--rm", "--privileged", IMAGE, "dmesg"]).stdout, /EXT4-fs \(vd[a-z]\): recovery complete/);
    assert.match(docker(host, ["image", "ls", "--format", "{{.Repository}}"]).stdout, /^dinv-test\/tools$/m);
    assert.match(docker(host, ["ps", "-a", "--format", "{{.Names}}"]).stdout, /^writer$/m);
    assert.equal(docker(host, ["run", "--rm", "-v", "/cache:/cache", IMAGE, "cat", "/cache/marker"]).stdout, "committed\n");
    const lines = docker(host, ["run", "--rm", "-v", "/cache:/cache", IMAGE, "sh", "-c", "wc -l < /cache/stream"]).stdout.trim();
    report.linesSurvivingKill = lines;
    assert.ok(Number(lines) > 0);
  });

  test("dockerd dies in the guest: degraded with the reason, restarted, socket owner applied again", async () => {
    const kill = docker(host, ["run", "--rm", "--privileged", "--pid=host", IMAGE, "sh", "-c", "kill -9 $(pidof dockerd)"]);
    assert.notEqual(kill.code, -1);
    await until(() => dinv.state()?.phase === "degraded", "degraded", 60_000);
    assert.match(JSON.stringify(dinv.state()?.errors), /dockerd exited \(signal SIGKILL\); restarting it \(attempt 1 of 5\)/);
    const t0 = Date.now();
    await until(() => dinv.state()?.phase === "ready", "ready again", 180_000);
    report.dockerdRestartSeconds = ((Date.now() - t0) / 1000).toFixed(1);
    const owner = docker(host, ["run", "--rm", "-v", "/var/run/docker.sock:/s", IMAGE, "stat", "-c", "%u:%g", "/s"]);
    assert.equal(owner.stdout.trim(), "1000:1000");
  });

  test("the docker disk fills up: degraded with the reason, and freeing space recovers without a reboot", async () => {
    docker(host, ["rm", "-f", "writer"]);
    // Fills what a container may use but 32 MiB (under the 64 MiB the agent calls full), so the disk
    // is full for users while dockerd keeps the room it needs to record the container's exit and removal.
    const fill = "avail=$(df -Pk / | awk 'NR==2 {print $4}'); dd if=/dev/zero of=/fill bs=1M count=$((avail / 1024 - 32)) 2>/dev/null; sync";
    const filled = docker(host, ["run", "--name", "filler", IMAGE, "sh", "-c", fill], undefined, 600_000);
    assert.equal(filled.code, 0, filled.stderr);
    const state = () => JSON.stringify(dinv.state());
    await until(() => dinv.state()?.phase === "degraded", "degraded (disk full)", 90_000).catch((e: Error) => assert.fail(`${e.message}; state: ${state()}`));
    assert.match(JSON.stringify(dinv.state()?.errors), /the docker disk is full/);
    assert.equal(docker(host, ["version"]).code, 0, "the guest and dockerd stay up");
    const removed = docker(host, ["rm", "-f", "filler"]);
    assert.equal(removed.code, 0, removed.stderr);
    await until(() => dinv.state()?.phase === "ready", "ready after freeing space", 90_000).catch((e: Error) => assert.fail(`${e.message}; state: ${state()}`));
  });

  test("SIGTERM with several containers, one ignoring SIGTERM: all stop, exit 0 within timeout + 25 s", async () => {
    for (const n of [1, 2]) {
      const r = docker(host, ["run", "-d", "--name", `term${n}`, "-v", "/cache:/cache", IMAGE, "sh", "-c", `trap 'echo $$ > /cache/term${n}; exit 0' TERM; while true; do sleep 1; done`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const stubborn = docker(host, ["run", "-d", "--name", "stubborn", IMAGE, "sh", "-c", "trap '' TERM; while true; do sleep 1; done"]);
    assert.equal(stubborn.code, 0, stubborn.stderr);
    assert.equal(docker(host, ["ps", "-q"]).stdout.trim().split("\n").length, 3, "three containers running before the stop");
    const { code, ms } = await dinv.stop("SIGTERM");
    report.stopWithStubbornContainerMs = String(ms);
    assert.equal(code, 0, dinv.tail());
    assert.ok(ms < 5_000 + 25_000, `stop took ${ms} ms`);
    const fsckClean = fsck(dockerDisk);
    report.fsckAfterCleanStop = fsckClean.summary;
    const shutdown = dinv.messages().find((m) => m.startsWith("guest stopped:"));
    assert.ok(fsckClean.clean, `${fsckClean.summary}\n${shutdown}`);
    assert.match(shutdown ?? "", /filesystem\(s\) unmounted in \d+\.\d s$/, "every filesystem unmounted, none left read-only");
  });

  test("kill -9 of the launcher: the next start stops the orphaned QEMU, then boots", async () => {
    dinv.start();
    await until(() => dinv.messages().some((m) => m === "starting QEMU"), "QEMU start", 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    const orphan = Number(readFileSync(join(dinv.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
    dinv.child!.kill("SIGKILL");
    await dinv.exit;
    assert.ok(alive(orphan), "QEMU survives its launcher");
    dinv.start();
    assert.equal((await dinv.waitUntilSettled()).phase, "ready", dinv.tail());
    assert.ok(dinv.logs.some((l) => /a QEMU of a previous launcher is still running/.test(l.msg)));
    assert.ok(!alive(orphan), "the orphan is gone");
    assert.match(docker(host, ["run", "--rm", "-v", "/cache:/cache", IMAGE, "cat", "/cache/term1", "/cache/term2"]).stdout, /^\d+\n\d+\n$/);
    // The stop ended each container as it should: the two that handle SIGTERM exited 0, the stubborn one was killed.
    assert.equal(docker(host, ["inspect", "--format", "{{.State.ExitCode}}", "term1", "term2", "stubborn"]).stdout, "0\n0\n137\n");
  });

  test("a hung agent is reported within the heartbeat bound, and shutdown still ends (forced, exit 3)", async () => {
    const stopped = docker(host, ["run", "--rm", "--privileged", "--pid=host", IMAGE, "sh", "-c", "kill -STOP $(pidof node)"]);
    assert.equal(stopped.code, 0, stopped.stderr);
    const t0 = Date.now();
    await until(() => /has not answered/.test(JSON.stringify(dinv.state()?.errors ?? [])), "silence reported", 60_000);
    report.hungAgentReportedSeconds = ((Date.now() - t0) / 1000).toFixed(1);
    const { code, ms } = await dinv.stop("SIGTERM");
    report.stopWithHungAgentMs = String(ms);
    assert.equal(code, 3, dinv.tail());
    assert.ok(ms < 5_000 + 30_000 + 15_000, `stop took ${ms} ms`);
  });
});
