// VM suite: the shared docker-disk cache. Job 1 imports an image and builds, stops cleanly: its disk
// becomes generation 1 of its key. Jobs 2 and 3 run at once from that generation (job 3 through a
// restore key) and do not see each other's changes; job 2 saves through the guest's docker API (the
// dinv-cache volume driver), job 3 with `dinv cache save`, then changes more and is killed with -9.
// Job 4 of job 3's key has what was saved and nothing after it.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientDocker } from "../helpers/clients.js";
import { DinvProcess } from "../helpers/dinv-process.js";
import { importBusybox } from "../helpers/docker-cli.js";

const cacheDir = mkdtempSync(join(tmpdir(), "dinv-cache-"));
const context = mkdtempSync(join(tmpdir(), "dinv-cache-build-"));
writeFileSync(join(context, "Dockerfile"), `FROM dinv-test/busybox:latest\nRUN sh -c 'echo built > /built'\nCMD ["cat", "/built"]\n`);

const images = (d: DinvProcess) => clientDocker(d.dockerHost, ["images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split("\n").filter(Boolean);

async function job(key: string, extra: Record<string, string> = {}): Promise<DinvProcess> {
  const d = await DinvProcess.create({ DINV_CACHE_DIR: cacheDir, DINV_CACHE_KEY: key, DINV_WARM_START: "off", ...extra });
  d.start();
  const state = await d.waitUntilSettled(400);
  assert.equal(state.phase, "ready", d.tail());
  return d;
}

describe("the shared cache: a job starts from the last good job's docker disk", () => {
  const all: DinvProcess[] = [];
  after(async () => {
    for (const d of all) await d.kill();
  });

  test("job 1 (empty cache) imports and builds; its clean stop promotes generation 1", async () => {
    const d = await job("proj/main");
    all.push(d);
    assert.match(d.cli(["status"]).stdout, /cache: +proj\/main, empty/);
    importBusybox(d.dockerHost);
    const build = clientDocker(d.dockerHost, ["build", "--progress=plain", "-t", "dinv-test/built", context]);
    assert.equal(build.code, 0, build.stderr);
    clientDocker(d.dockerHost, ["create", "--name", "leftover", "dinv-test/busybox"]);
    const stop = await d.stop();
    assert.equal(stop.code, 0, d.tail());
    assert.ok(await d.logged(/^cache: "proj\/main" generation 1 promoted at stop: /), d.tail());
  });

  test("jobs 2 and 3 start at once from generation 1, see its images and build CACHED, and not each other's changes", async () => {
    const [j2, j3] = await Promise.all([job("proj/main"), job("proj/feature", { DINV_CACHE_RESTORE_KEYS: "proj/main" })]);
    all.push(j2, j3);
    assert.match(j2.cli(["status"]).stdout, /cache: +proj\/main generation 1, /);
    assert.match(j3.cli(["status"]).stdout, /cache: +proj\/feature generation 1 \(from restore key proj\/main\)/);
    for (const d of [j2, j3]) {
      assert.ok(images(d).includes("dinv-test/built:latest"), images(d).join(","));
      // The job that promoted left a container: the next job starts without it.
      assert.equal(clientDocker(d.dockerHost, ["ps", "-aq"]).stdout.trim(), "");
    }
    const again = clientDocker(j2.dockerHost, ["build", "--progress=plain", "-t", "dinv-test/built", context]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /RUN sh -c 'echo built > \/built'.*\n#\d+ CACHED/);
    assert.equal(clientDocker(j2.dockerHost, ["tag", "dinv-test/busybox", "mark/j2"]).code, 0);
    assert.equal(clientDocker(j3.dockerHost, ["tag", "dinv-test/busybox", "mark/j3"]).code, 0);
    assert.ok(!images(j3).includes("mark/j2:latest"));
    assert.ok(!images(j2).includes("mark/j3:latest"));

    // Job 2 asks through the docker API only: the command returns once the generation is on disk.
    const saved = clientDocker(j2.dockerHost, ["volume", "create", "-d", "dinv-cache", "save"]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.ok(await j2.logged(/^cache: "proj\/main" generation 2 saved: /), j2.tail());
    const twice = clientDocker(j2.dockerHost, ["volume", "create", "-d", "dinv-cache", "save"]);
    assert.equal(twice.code, 0, twice.stderr);
    assert.ok(await j2.logged(/^cache: "proj\/main" generation 3 saved: /), j2.tail());

    // Job 3 with the CLI, then changes more and is killed with -9: nothing after the save is kept.
    const cli = j3.cli(["cache", "save"], 600_000);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /"proj\/feature" generation 1 saved: /);
    assert.match(j3.cli(["status"]).stdout, /last save: generation 1/);
    assert.equal(clientDocker(j3.dockerHost, ["tag", "dinv-test/busybox", "mark/after-save"]).code, 0);
    j3.child!.kill("SIGKILL");
    process.kill(Number(readFileSync(join(j3.env.DINV_RUN_DIR!, "qemu.pid"), "utf8")), "SIGKILL");
    await j3.exit;
    assert.equal((await j2.stop()).code, 0, j2.tail());
  });

  test("job 4 of job 3's key has what job 3 saved and nothing after it; dinv cache list shows every key", async () => {
    const d = await job("proj/feature");
    all.push(d);
    assert.match(d.cli(["status"]).stdout, /cache: +proj\/feature generation 1, /);
    const seen = images(d);
    assert.ok(seen.includes("mark/j3:latest"), seen.join(","));
    assert.ok(!seen.includes("mark/after-save:latest"), seen.join(","));
    assert.ok(!seen.includes("mark/j2:latest"), seen.join(","));
    const list = spawnSync(process.execPath, [join(process.cwd(), "dist/dinv.js"), "cache", "list", "--json"], { env: { PATH: process.env.PATH, DINV_CACHE_DIR: cacheDir }, encoding: "utf8" });
    assert.equal(list.status, 0, list.stderr);
    const keys = (JSON.parse(list.stdout) as { keys: { key: string; generations: { generation: number }[] }[] }).keys;
    const gens = (k: string) => keys.find((e) => e.key === k)?.generations.map((g) => g.generation);
    // proj/main: generation 1 (job 1), 2 and 3 (job 2's requests), 4 (job 2's clean stop); three kept.
    assert.deepEqual(gens("proj/main"), [2, 3, 4]);
    assert.deepEqual(gens("proj/feature"), [1]);
    await d.kill();
  });

  test("warm on top of the cache: the first cold start on a generation saves a state, the next job on it restores with the cache present", async () => {
    const warmDir = mkdtempSync(join(tmpdir(), "dinv-cache-warm-"));
    const first = await job("proj/main", { DINV_WARM_START: "auto", DINV_WARM_DIR: warmDir, DINV_CACHE_SAVE: "off" });
    all.push(first);
    assert.equal(first.state()?.warm?.start, "cold");
    assert.match(first.state()?.warm?.saved ?? "", /^saved in /, first.tail());
    assert.equal((await first.stop()).code, 0, first.tail());
    const second = await job("proj/main", { DINV_WARM_START: "auto", DINV_WARM_DIR: warmDir, DINV_CACHE_SAVE: "off" });
    all.push(second);
    assert.equal(second.state()?.warm?.start, "warm", second.tail());
    assert.match(second.cli(["status"]).stdout, /cache: +proj\/main generation 4, /);
    assert.ok(images(second).includes("dinv-test/built:latest"), images(second).join(","));
    assert.equal(clientDocker(second.dockerHost, ["run", "--rm", "dinv-test/built"]).stdout, "built\n");
    await second.kill();
  });

  test("dinv cache warm saves a state on the key's generation without promoting; the next job restores it", async () => {
    const warmDir = mkdtempSync(join(tmpdir(), "dinv-cache-warm2-"));
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", DINV_CACHE_DIR: cacheDir, DINV_CACHE_KEY: "proj/feature", DINV_WARM_DIR: warmDir };
    const saved = spawnSync(process.execPath, [join(process.cwd(), "dist/dinv.js"), "cache", "warm"], { env, encoding: "utf8", timeout: 600_000 });
    assert.equal(saved.status, 0, saved.stderr.split("\n").slice(-30).join("\n"));
    // Generation 2: job 4 above stopped cleanly and promoted.
    assert.match(saved.stderr, /cache: docker disk: an overlay of \\?"proj\/feature\\?" generation 2/);
    assert.match(saved.stderr, /warm state saved in/);
    assert.doesNotMatch(saved.stderr, /promoted at stop/);
    const d = await job("proj/feature", { DINV_WARM_START: "auto", DINV_WARM_DIR: warmDir });
    all.push(d);
    assert.equal(d.state()?.warm?.start, "warm", d.tail());
    assert.ok(images(d).includes("mark/j3:latest"), images(d).join(","));
    await d.kill();
  });
});
