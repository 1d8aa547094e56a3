import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { bootWithWatchdog } from "../../host/run/boot.js";
import { INITRAMFS_STARTED } from "../../shared/constants.js";

/** A stand-in for qemu-system-x86_64: prints kernel lines, then the initramfs line only from attempt `reachFrom` on. */
function fakeQemu(reachFrom: number): { binary: string; attempts: () => number } {
  const dir = mkdtempSync(join(tmpdir(), "dinv-fake-qemu-"));
  const count = join(dir, "count");
  writeFileSync(count, "0");
  const binary = join(dir, "qemu");
  writeFileSync(binary, `#!/bin/sh
n=$(($(cat ${count}) + 1)); echo $n > ${count}
echo "[    0.836695] PCI: Fatal: No config space access function found"
[ $n -ge ${reachFrom} ] && echo "${INITRAMFS_STARTED} at 2.19s"
exec sleep 30
`);
  chmodSync(binary, 0o755);
  return { binary, attempts: () => Number(readFileSync(count, "utf8")) };
}

function logger() {
  const warnings: string[] = [];
  const log = { info: () => undefined, debug: () => undefined, warn: (m: unknown) => warnings.push(String(m)), error: () => undefined };
  return { log: log as unknown as Parameters<typeof bootWithWatchdog>[0]["log"], warnings };
}

const options = (binary: string, log: ReturnType<typeof logger>["log"]) => ({
  qemuBinary: binary,
  argsFor: () => [],
  accel: "tcg" as const,
  helloSince: () => false,
  stopping: () => false,
  log,
  consoleTimeoutMs: 1500,
  kvmHelloTimeoutMs: 30_000,
  attempts: 3,
});

test("watchdog: a TCG kernel that prints lines but never reaches the initramfs is killed and booted again", async () => {
  const fake = fakeQemu(2);
  const { log, warnings } = logger();
  const result = await bootWithWatchdog(options(fake.binary, log));
  assert.equal(result.ok, true);
  assert.equal(fake.attempts(), 2);
  assert.deepEqual(warnings, ["the guest kernel did not reach its initramfs within 1.5 s; killed QEMU, retrying (1/3)"]);
  if (result.ok) {
    result.qemu.kill("SIGKILL");
    await result.qemu.exited;
  }
});

test("watchdog: gives up after the attempts, naming what it waited for", async () => {
  const fake = fakeQemu(99);
  const { log, warnings } = logger();
  const result = await bootWithWatchdog(options(fake.binary, log));
  assert.deepEqual(result, { ok: false, reason: "the guest kernel did not reach its initramfs in 3 attempts of 1.5 s" });
  assert.equal(fake.attempts(), 3);
  assert.equal(warnings.length, 2);
});

test("the initramfs prints the line the watchdog waits for, from the generated constants", async () => {
  const init = await readFile(new URL("../../alpine/initramfs/init", import.meta.url), "utf8");
  assert.ok(init.includes('echo "$DINV_INITRAMFS_STARTED at '), "alpine/initramfs/init must print INITRAMFS_STARTED first");
  const { SHELL_CONSTANTS } = await import("../../shared/shell-constants.js");
  assert.equal(SHELL_CONSTANTS.DINV_INITRAMFS_STARTED, INITRAMFS_STARTED);
});

test("a side service that cannot start again before an attempt ends the boot with the reason, never a crash", async () => {
  const { binary, attempts } = fakeQemu(1);
  const { log } = logger();
  const result = await bootWithWatchdog({
    ...options(binary, log),
    beforeStart: async () => {
      throw new Error("passt exited at start: Couldn't create user namespace");
    },
  });
  assert.deepEqual(result, { ok: false, reason: "cannot start what QEMU connects to: passt exited at start: Couldn't create user namespace" });
  assert.equal(attempts(), 0, "QEMU never started");
});

test("a QEMU that exits before the guest reached its initramfs is booted again (nothing is mounted yet)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-fake-qemu-"));
  const count = join(dir, "count");
  writeFileSync(count, "0");
  const binary = join(dir, "qemu");
  // The first start resets at once (exit 0, as a guest reset under -no-reboot does); the second boots.
  writeFileSync(binary, `#!/bin/sh\nn=$(($(cat ${count}) + 1)); echo $n > ${count}\n[ $n -ge 2 ] || exit 0\necho "${INITRAMFS_STARTED} at 1.00s"\nexec sleep 30\n`);
  chmodSync(binary, 0o755);
  const { log, warnings } = logger();
  const result = await bootWithWatchdog(options(binary, log));
  assert.equal(result.ok, true);
  assert.equal(readFileSync(count, "utf8").trim(), "2");
  assert.ok(warnings.some((w) => /exited \(code 0\) before the guest reached its initramfs; retrying \(1\/3\)/.test(w)), warnings.join("\n"));
  if (result.ok) result.qemu.kill("SIGKILL");
});
