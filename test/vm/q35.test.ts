// VM suite, reduced for DINV_MACHINE=q35 (virtio-pci instead of virtio-mmio): boot, a container
// runs, a bind mount is shared, a clean stop. The full option set runs on microvm. It also keeps
// the guest's address-space randomisation (DINV_GUEST_ASLR=on), off by default under TCG.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { docker, importBusybox } from "../helpers/docker-cli.js";
import { DinvProcess } from "../helpers/dinv-process.js";

describe("DINV_MACHINE=q35", () => {
  let dinv: DinvProcess;
  const data = mkdtempSync(join(tmpdir(), "dinv-q35-"));

  before(async () => {
    writeFileSync(join(data, "hello.txt"), "hello q35\n");
    dinv = await DinvProcess.create({ DINV_MACHINE: "q35", DINV_MOUNTS: data, DINV_MOUNTS_FS: "9p", DINV_GUEST_ASLR: "on" });
    dinv.start();
  });

  after(async () => {
    await dinv?.kill();
  });

  test("boots to ready and reports q35", async () => {
    const state = await dinv.waitUntilSettled();
    assert.equal(state.phase, "ready", dinv.tail());
    assert.equal(state.vm.machine, "q35");
  });

  test("a container runs and reads the shared folder over 9p (DINV_MOUNTS_FS=9p)", () => {
    importBusybox(dinv.dockerHost);
    const result = docker(dinv.dockerHost, ["run", "--rm", "-v", `${data}:/data`, "dinv-test/busybox", "sh", "-c", "grep ' /data ' /proc/mounts; cat /data/hello.txt"]);
    assert.match(result.stdout, /^dinv0 \/data 9p .*msize=512000/m, result.stderr);
    assert.match(result.stdout, /^hello q35$/m);
  });

  test("DINV_GUEST_ASLR=on: the guest keeps address-space randomisation", () => {
    const result = docker(dinv.dockerHost, ["run", "--rm", "dinv-test/busybox", "cat", "/proc/sys/kernel/randomize_va_space"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "2\n");
    assert.ok(!dinv.messages().some((m) => /without address-space randomisation/.test(m)), "no line saying it is off");
  });

  test("stops cleanly", async () => {
    const { code } = await dinv.stop("SIGTERM");
    assert.equal(code, 0, dinv.tail());
  });
});
