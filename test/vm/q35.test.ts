// VM suite, reduced for DINV_MACHINE=q35 (virtio-pci instead of virtio-mmio): boot, a container
// runs, a bind mount is shared, a clean stop. The full option set runs on microvm. It also keeps
// the guest's address-space randomisation (DINV_GUEST_ASLR=on), off by default under TCG.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
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

  test("9p's mapped security model: root in a container cannot plant a setuid binary or a device node on the launcher side", () => {
    const planted = docker(dinv.dockerHost, ["run", "--rm", "-v", `${data}:/data`, "dinv-test/busybox", "sh", "-c",
      "cp /bin/busybox /data/suid && chmod u+s /data/suid && mknod /data/blk b 8 0 && mknod /data/chr c 1 3 && ls -l /data/suid /data/blk /data/chr"]);
    assert.equal(planted.code, 0, planted.stderr);
    // The guest sees what it asked for (kept in xattrs)...
    assert.match(planted.stdout, /^-rws/m);
    assert.match(planted.stdout, /^b/m);
    // ...the launcher side sees ordinary files of the launcher's user, without setuid.
    for (const name of ["suid", "blk", "chr"]) {
      const st = statSync(join(data, name));
      assert.ok(st.isFile(), `${name} is a plain file on the launcher side`);
      assert.equal(st.mode & 0o6000, 0, `${name} has no setuid/setgid bit`);
      assert.equal(st.uid, process.getuid?.());
    }
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
