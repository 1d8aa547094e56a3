// VM suite: boots real guests under TCG (KVM where usable) and asserts what a user sees.
// One VM is shared by the assertions of a boot; the second boot reuses its disk.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { DinvState } from "../../shared/protocol/control.js";
import { docker, importBusybox } from "../helpers/docker-cli.js";
import { chooseAccel, probeKvm } from "../../host/qemu/accel.js";
import { DinvProcess } from "../helpers/dinv-process.js";

describe("walking skeleton and control API: boot, docker, clean stop, persistence", () => {
  let dinv: DinvProcess;
  let waited: { code: number; stdout: string; stderr: string };
  let state: DinvState;

  before(async () => {
    dinv = await DinvProcess.create({ DINV_SHUTDOWN_TIMEOUT: "5" });
    dinv.start();
    // `dinv wait` is started at once: it must wait for the launcher's socket, too.
    waited = await dinv.wait(300);
    state = dinv.state()!;
  });

  after(async () => {
    await dinv?.kill();
  });

  test("dinv wait returns 0 once ready; dinv status --json parses and says ready", () => {
    assert.equal(waited.code, 0, `${waited.stderr}\n${dinv.tail()}`);
    assert.equal(state.phase, "ready");
    assert.equal(state.guest?.state.phase, "ready");
    assert.ok(state.steps.every((s) => s.state === "ok"), JSON.stringify(state.steps));
    assert.equal(dinv.cli(["status"]).code, 0);
    assert.match(dinv.cli(["status"]).stdout, /^dinv: ready \((kvm|tcg)\)/);
    assert.equal(dinv.cli(["health"]).code, 0);
  });

  test("the log says ready, with the docker address, the accelerator and the boot timeline", () => {
    assert.ok(state.accel === "kvm" || state.accel === "tcg");
    const ready = dinv.logs.find((l) => l.msg.startsWith("dinv ready:"));
    assert.ok(ready, "a 'dinv ready' log line");
    assert.match(ready!.msg, new RegExp(`tcp://127\\.0\\.0\\.1:${dinv.env.DINV_DOCKER_PORT}`));
    const t = state.timeline!;
    // Early start (defaults: no volume, no shares): the guest init mounts the disk and starts
    // dockerd before the agent's hello; the agent adopts that dockerd.
    assert.ok(t.kernel! < t.init! && t.init! < t.disksMounted! && t.disksMounted! <= t.dockerdStarted! && t.dockerdStarted! < t.ready! && t.hello! < t.ready!, JSON.stringify(t));
    assert.match(state.steps.find((s) => s.name === "disks")?.detail ?? "", /docker: (formatted blank disk|mounted existing ext4).*\(by the guest init\)/);
    assert.match(state.steps.find((s) => s.name === "dockerd")?.detail ?? "", /started by the guest init \(pid \d+\), adopted/);
  });

  test("under TCG the agent starts from its startup snapshot (the guest init's fallback unused)", (t) => {
    if (state.accel !== "tcg") return t.skip("under KVM the guest sees the host's CPU and the snapshot is refused by design");
    const started = dinv.logs.find((l) => l.src === "console" && l.msg.startsWith("dinv-agent: started at"));
    assert.match(started?.msg ?? "", /\(from its startup snapshot, \d+\.\d\d s of CPU\)/, dinv.tail());
    assert.ok(!dinv.logs.some((l) => /startup snapshot did not load|not yet supported in user snapshots/.test(l.msg)), dinv.tail());
  });

  test("auto on this machine: the accelerator the probe allows, and under TCG the warning that says why", async () => {
    // The machine's own probe decides what the run should have chosen and said.
    const choice = chooseAccel("auto", await probeKvm());
    if (choice.accel === "kvm") {
      // KVM that opens may still stall a guest: the watchdog's fall-back to TCG is then logged.
      if (state.accel === "tcg") assert.ok(dinv.logs.some((l) => /falling back to TCG/.test(l.msg)), dinv.tail());
      return;
    }
    assert.equal(state.accel, "tcg");
    assert.ok(choice.accel === "tcg" && choice.warning, "auto falling back to TCG always says why");
    assert.ok(dinv.logs.some((l) => l.level === 40 && l.msg === `WARNING: ${choice.warning}`), `the WARNING line for this machine: ${choice.warning}`);
  });

  test("docker version answers from the guest's dockerd through the forward", () => {
    const result = docker(dinv.dockerHost, ["version", "--format", "{{.Server.Version}} {{.Server.Os}}"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), `${state.dockerVersion} linux`);
    const info = docker(dinv.dockerHost, ["info", "--format", "{{.Name}} {{.Driver}}"]);
    assert.equal(info.stdout.trim(), "dinv overlay2", "the daemon is the guest's (hostname dinv), on overlay2");
  });

  test("the guest runs a current Docker: server 26 or later, API 1.44 or later, BuildKit its default builder", async () => {
    const result = docker(dinv.dockerHost, ["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]);
    const [version, api] = result.stdout.trim().split(" ");
    assert.ok(Number(version!.split(".")[0]) >= 26, `server ${version}`);
    const [apiMajor, apiMinor] = api!.split(".").map(Number);
    assert.ok(apiMajor! > 1 || apiMinor! >= 44, `API ${api}`);
    // The server advertises its default builder on /_ping: "2" is BuildKit (CLI 23+ then uses it).
    const ping = await fetch(`http://127.0.0.1:${dinv.env.DINV_DOCKER_PORT}/_ping`);
    assert.equal(ping.headers.get("builder-version"), "2");
  });

  test("an imported image runs: docker run --rm IMAGE echo hi prints hi", () => {
    importBusybox(dinv.dockerHost);
    const result = docker(dinv.dockerHost, ["run", "--rm", "dinv-test/busybox", "echo", "hi"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "hi\n");
  });

  test("under TCG the guest runs without address-space randomisation and keeps the TSC as its clock", (t) => {
    if (state.accel !== "tcg") return t.skip("under KVM randomisation stays on and the clock is kvm-clock");
    assert.ok(dinv.messages().some((m) => /without address-space randomisation.*DINV_GUEST_ASLR=on/.test(m)), "the log says so, with the way back");
    const result = docker(dinv.dockerHost, ["run", "--rm", "dinv-test/busybox", "cat", "/proc/sys/kernel/randomize_va_space", "/sys/devices/system/clocksource/clocksource0/current_clocksource"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "0\ntsc\n");
  });

  test("containers get the 172.19.0.0/16 bridge", () => {
    const result = docker(dinv.dockerHost, ["network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Subnet}}"]);
    assert.equal(result.stdout.trim(), "172.19.0.0/16");
  });

  test("SIGTERM stops dockerd cleanly and the launcher exits 0 within the timeout", async () => {
    const { code, ms } = await dinv.stop("SIGTERM");
    assert.equal(code, 0, dinv.tail());
    // DINV_SHUTDOWN_TIMEOUT=5 with nothing running: well inside timeout + dockerd's own teardown.
    assert.ok(ms < 5_000 + 15_000, `took ${ms} ms`);
    assert.ok(dinv.messages().includes("guest stopped cleanly; QEMU exited"));
    assert.equal(dinv.cli(["status"]).code, 3, "no launcher answers any more");
  });

  test("a second boot reuses the docker disk: the image is still there; dinv stop ends it cleanly", async () => {
    dinv.start();
    const again = await dinv.waitUntilSettled();
    assert.equal(again.phase, "ready", dinv.tail());
    assert.ok(dinv.messages().some((m) => /^using .*docker\.qcow2$/.test(m)), "the existing disk is used, not created");
    const images = docker(dinv.dockerHost, ["image", "ls", "--format", "{{.Repository}}"]);
    assert.match(images.stdout, /^dinv-test\/busybox$/m);
    const run = docker(dinv.dockerHost, ["run", "--rm", "dinv-test/busybox", "echo", "again"]);
    assert.equal(run.stdout, "again\n");
    const stop = dinv.cli(["stop"], 120_000);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, /stopped cleanly/);
    const exit = await dinv.exit!;
    assert.equal(exit.code, 0, dinv.tail());
  });
});
