// The launcher's lifecycle table and its end-of-run verdict, both pure.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Lifecycle, LifecycleError, LIFECYCLE, TRANSITIONS } from "../../host/run/lifecycle.js";
import { runVerdict, type RunEnd } from "../../host/run/exit-code.js";
import { EXIT } from "../../host/run/start.js";

test("lifecycle: the run's path, with a reason and a time for each phase", () => {
  let now = 1000;
  const l = new Lifecycle(() => now++);
  const seen: string[] = [];
  l.onchange = (e) => seen.push(e.phase);
  l.to("booting", "QEMU started");
  l.to("ready", "dockerd answers");
  l.to("degraded", "disk full");
  l.to("ready", "space freed");
  l.to("stopping", "SIGTERM");
  l.to("stopped", "clean");
  assert.deepEqual(seen, ["booting", "ready", "degraded", "ready", "stopping", "stopped"]);
  assert.deepEqual(l.history.map((e) => e.at), [1000, 1001, 1002, 1003, 1004, 1005, 1006]);
  assert.equal(l.ended, true);
});

test("lifecycle: every move not in the table is refused, and the end is final", () => {
  for (const from of LIFECYCLE) {
    for (const to of LIFECYCLE) {
      if (to === from) continue;
      const l = new Lifecycle();
      // Walk to `from` along allowed moves.
      const path: Record<string, string[]> = { preparing: [], booting: ["booting"], ready: ["booting", "ready"], degraded: ["booting", "degraded"], stopping: ["stopping"], stopped: ["stopping", "stopped"], failed: ["failed"] };
      for (const step of path[from]!) l.to(step as never, "walk");
      assert.equal(l.phase, from);
      if (TRANSITIONS[from].includes(to)) l.to(to, "allowed");
      else {
        assert.throws(() => l.to(to, "not allowed"), LifecycleError, `${from} -> ${to}`);
        assert.equal(l.offer(to, "not allowed"), false);
        assert.equal(l.phase, from);
      }
    }
  }
  // A stop may come in any phase before the end, and so may a failure.
  for (const from of LIFECYCLE.filter((p) => TRANSITIONS[p].length > 0)) {
    assert.ok(TRANSITIONS[from].includes("failed"), from);
    if (from !== "stopping") assert.ok(TRANSITIONS[from].includes("stopping"), from);
  }
});

const base: RunEnd = { mismatch: false, commandExit: undefined, clean: true, requested: true, forced: false, how: "clean" };
const verdicts: [string, Partial<RunEnd>, number, "stopped" | "failed", RegExp][] = [
  ["a clean stop", {}, EXIT.ok, "stopped", /guest stopped cleanly/],
  ["a stop during boot, nothing mounted", { clean: false }, EXIT.ok, "stopped", /before anything was mounted/],
  ["a forced stop", { forced: true, how: "forced", clean: false }, EXIT.forced, "failed", /did not confirm a clean shutdown/],
  ["a stop that had to end QEMU", { how: "forced", clean: false }, EXIT.forced, "failed", /did not confirm/],
  ["QEMU gone by itself", { requested: false, how: undefined, clean: false }, EXIT.failed, "failed", /unexpectedly/],
  ["a protocol mismatch", { mismatch: true }, EXIT.failed, "failed", /protocol versions/],
  ["the command's exit code", { commandExit: 7 }, 7, "failed", /exit code 7/],
  ["the command succeeded and the guest stopped cleanly", { commandExit: 0 }, EXIT.ok, "stopped", /exit code 0$/],
  ["the command succeeded but the guest did not confirm", { commandExit: 0, clean: false }, EXIT.forced, "failed", /did not confirm/],
];
for (const [name, over, code, phase, words] of verdicts) {
  test(`run verdict: ${name}`, () => {
    const v = runVerdict({ ...base, ...over });
    assert.equal(v.code, code);
    assert.equal(v.phase, phase);
    assert.match(v.message, words);
  });
}
