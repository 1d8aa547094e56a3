// VM suite: freed guest memory goes back to the host. A 2G guest; a container fills 1000 MB of
// tmpfs and exits: QEMU's RSS rises by about that much, then falls back once the guest reports the
// freed pages (virtio-balloon free page reporting), within a bounded wait.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DinvProcess } from "../helpers/dinv-process.js";
import { docker, importBusybox } from "../helpers/docker-cli.js";

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("free page reporting", () => {
  test("after a container holds 1000 MB and exits, QEMU's RSS falls back near its idle figure", async () => {
    const d = await DinvProcess.create({ DINV_MEMORY: "2G" });
    d.start();
    try {
      const state = await d.waitUntilSettled(400);
      assert.equal(state.phase, "ready", d.tail());
      importBusybox(d.dockerHost);
      const pid = Number(readFileSync(join(d.env.DINV_RUN_DIR!, "qemu.pid"), "utf8"));
      await sleep(5000);
      const idle = rssMb(pid);
      const run = docker(d.dockerHost, ["run", "-d", "--tmpfs", "/t:size=1100m", "dinv-test/busybox", "sh", "-c", "dd if=/dev/zero of=/t/f bs=1M count=1000 2>/dev/null; touch /t/done; sleep 600"]);
      assert.equal(run.code, 0, run.stderr);
      const id = run.stdout.trim();
      let peak = idle;
      for (let i = 0; i < 120 && peak < idle + 900; i++) {
        await sleep(1000);
        peak = Math.max(peak, rssMb(pid));
      }
      assert.ok(peak >= idle + 900, `QEMU's RSS rose by ${Math.round(peak - idle)} MB only (idle ${Math.round(idle)} MB)`);
      assert.equal(docker(d.dockerHost, ["rm", "-f", id]).code, 0);
      let after = peak;
      for (let i = 0; i < 60 && after > idle + 0.4 * (peak - idle); i++) {
        await sleep(1000);
        after = rssMb(pid);
      }
      const kept = (after - idle) / (peak - idle);
      console.log(`QEMU RSS: idle ${Math.round(idle)} MB, peak ${Math.round(peak)} MB, after ${Math.round(after)} MB (kept ${kept.toFixed(2)} of the rise)`);
      // Without free page reporting QEMU keeps all of it (1.0); the rest of what it keeps is the guest's own growth
      // from running a container (page cache, dockerd), measured by bench/memory.ts's reclaim_ratio.
      assert.ok(kept <= 0.4, `QEMU kept ${Math.round(after - idle)} MB of the ${Math.round(peak - idle)} MB the guest freed`);
    } finally {
      await d.stop().catch(() => undefined);
      await d.kill();
    }
  });
});
