// VM suite: a docker disk that holds another filesystem is reported, never formatted.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DinvProcess } from "../helpers/dinv-process.js";

/** blkid's view of the first bytes of a qcow2 image (converted to raw to look). */
function signatureOf(qcow2: string): string {
  const raw = join(mkdtempSync(join(tmpdir(), "dinv-raw-")), "disk.raw");
  execFileSync("qemu-img", ["convert", "-U", "-O", "raw", qcow2, raw]);
  return execFileSync("blkid", ["-p", "-o", "value", "-s", "TYPE", raw]).toString().trim();
}

describe("a docker disk holding a foreign filesystem", () => {
  let dinv: DinvProcess;
  let disk: string;

  before(async () => {
    dinv = await DinvProcess.create({ DINV_DOCKER_SIZE: "1G" });
    mkdirSync(dinv.env.DINV_DOCKER_DIR!, { recursive: true });
    disk = join(dinv.env.DINV_DOCKER_DIR!, "docker.qcow2");
    const raw = `${disk}.raw`;
    execFileSync("truncate", ["-s", "1G", raw]);
    execFileSync("mkswap", ["-L", "user-data", raw], { stdio: "ignore" });
    execFileSync("qemu-img", ["convert", "-O", "qcow2", raw, disk]);
    assert.equal(signatureOf(disk), "swap");
    dinv.start();
    await dinv.waitUntilSettled();
  });

  after(async () => {
    await dinv?.kill();
  });

  test("the guest reports degraded, naming the filesystem and what to do", async () => {
    const state = dinv.state();
    assert.equal(state?.phase, "degraded", dinv.tail());
    assert.match(state?.errors[0]?.message ?? "", /docker disk .* holds a swap filesystem/);
    assert.match(state?.errors[0]?.hint ?? "", /move the disk image aside/);
    const waited = await dinv.wait(10);
    assert.equal(waited.code, 1);
    assert.match(waited.stderr, /degraded: .*swap/);
    assert.equal(dinv.cli(["health"]).code, 1);
    assert.ok(dinv.logs.some((l) => l.level === 50 && /guest degraded: .*swap/.test(l.msg)), "an error line in the log");
  });

  test("the launcher still stops cleanly, and the disk keeps its signature", async () => {
    const { code } = await dinv.stop("SIGTERM");
    assert.equal(code, 0, dinv.tail());
    assert.equal(signatureOf(disk), "swap");
  });
});

describe("a docker disk that held data but reads as blank", () => {
  let dinv: DinvProcess;
  let disk: string;

  before(async () => {
    dinv = await DinvProcess.create({ DINV_DOCKER_SIZE: "1G" });
    mkdirSync(dinv.env.DINV_DOCKER_DIR!, { recursive: true });
    disk = join(dinv.env.DINV_DOCKER_DIR!, "docker.qcow2");
    // Written, but with nothing blkid recognises (as a disk whose first blocks failed to read looks).
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "1G"]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 64M 1M", disk], { stdio: "ignore" });
    dinv.start();
    await dinv.waitUntilSettled();
  });

  after(async () => {
    await dinv?.kill();
  });

  test("is not formatted: degraded with the reason, its data left as it was", async () => {
    const state = dinv.state();
    assert.equal(state?.phase, "degraded", dinv.tail());
    assert.match(JSON.stringify(state?.errors), /reads as blank, but the launcher did not create it/);
    const { code } = await dinv.stop("SIGTERM");
    assert.equal(code, 0, dinv.tail());
    const read = execFileSync("qemu-io", ["-f", "qcow2", "-c", "read -P 0x5a 64M 1M", disk]).toString();
    assert.match(read, /read 1048576\/1048576 bytes/, "the pattern is still there");
  });
});

describe("a docker.qcow2 naming a backing file", () => {
  test("is refused before boot (exit 2), and the file it names is never read", async () => {
    const dinv = await DinvProcess.create();
    mkdirSync(dinv.env.DINV_DOCKER_DIR!, { recursive: true });
    const secret = join(mkdtempSync(join(tmpdir(), "dinv-secret-")), "secret.img");
    execFileSync("truncate", ["-s", "1G", secret]);
    const past = new Date("2020-01-01T00:00:00Z");
    // The check below relies on reads updating atime here: a probe file shows that they do.
    const probe = join(dirname(secret), "probe");
    writeFileSync(probe, "x");
    utimesSync(probe, past, past);
    readFileSync(probe);
    assert.notEqual(statSync(probe).atimeMs, past.getTime(), "this filesystem records reads (atime): the check can fail");
    utimesSync(secret, past, past);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", join(dinv.env.DINV_DOCKER_DIR!, "docker.qcow2"), "1G"]);
    utimesSync(secret, past, past);
    dinv.start();
    const exit = await dinv.exit!;
    assert.equal(exit.code, 2, dinv.tail());
    assert.ok(dinv.messages().some((m) => /names a backing file/.test(m)));
    assert.equal(statSync(secret).atimeMs, past.getTime(), "never opened for reading");
    assert.ok(!existsSync(join(dinv.env.DINV_RUN_DIR!, "qemu.pid")), "no QEMU started");
  });
});
