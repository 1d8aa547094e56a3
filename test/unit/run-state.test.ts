// The run's state table, its projections (the control API's phase, the exit code) and the
// end-of-run verdict, all pure.

import { test } from "node:test";
import assert from "node:assert/strict";
import { runVerdict, type RunEnd } from "../../host/run/exit-code.js";
import { EXIT } from "../../host/run/start.js";
import { controlPhase, EVENT_KEYS, exitCode, next, RUN_PHASES, RunTransitionError, TABLE, type EventKey, type RunEvent, type RunPhase, type RunState } from "../../host/run/state.js";

/** One state of each phase, as the run would hold it. */
const STATES: Record<RunPhase, RunState> = {
  preparing: { phase: "preparing", at: 0, reason: "started" },
  booting: { phase: "booting", at: 0, reason: "QEMU boots", accel: "tcg", attempt: 1 },
  restoring: { phase: "restoring", at: 0, reason: "QEMU loads", accel: "kvm" },
  holding: { phase: "holding", at: 0, reason: "saving", accel: "tcg" },
  ready: { phase: "ready", at: 0, reason: "dockerd answers", accel: "tcg" },
  degraded: { phase: "degraded", at: 0, reason: "disk full", accel: "tcg" },
  stopping: { phase: "stopping", at: 0, reason: "SIGTERM", accel: "tcg" },
  stopped: { phase: "stopped", at: 0, reason: "clean", code: 0 },
  failed: { phase: "failed", at: 0, reason: "QEMU died", code: 1 },
};

/** An event of each key. */
const EVENTS: Record<EventKey, RunEvent> = {
  "qemu-boot": { type: "qemu-started", accel: "kvm", restore: false, reason: "boot" },
  "qemu-restore": { type: "qemu-started", accel: "kvm", restore: true, reason: "restore" },
  "guest-booting": { type: "guest", phase: "booting", reason: "g" },
  "guest-ready": { type: "guest", phase: "ready", reason: "g" },
  "guest-degraded": { type: "guest", phase: "degraded", reason: "g" },
  "guest-stopping": { type: "guest", phase: "stopping", reason: "g" },
  "guest-stopped": { type: "guest", phase: "stopped", reason: "g" },
  hold: { type: "hold", reason: "h" },
  released: { type: "released", reason: "r" },
  "stop-requested": { type: "stop-requested", reason: "SIGTERM" },
  "ended-ok": { type: "ended", code: 0, reason: "clean" },
  "ended-failed": { type: "ended", code: 3, reason: "forced" },
};

// Every event in every phase: where the table says, or a thrown error for a move outside it.
const EXPECTED: Record<RunPhase, Partial<Record<EventKey, RunPhase>>> = {
  preparing: { "qemu-boot": "booting", "qemu-restore": "restoring", "stop-requested": "stopping", "ended-failed": "failed" },
  booting: { "qemu-boot": "booting", "guest-booting": "booting", "guest-ready": "ready", "guest-degraded": "degraded", "guest-stopping": "stopping", "guest-stopped": "stopping", hold: "holding", "stop-requested": "stopping", "ended-failed": "failed" },
  restoring: { "qemu-boot": "booting", "guest-booting": "restoring", "guest-ready": "ready", "guest-degraded": "degraded", "guest-stopping": "stopping", "guest-stopped": "stopping", hold: "holding", "stop-requested": "stopping", "ended-failed": "failed" },
  holding: { "guest-booting": "booting", "guest-ready": "holding", "guest-degraded": "degraded", "guest-stopping": "stopping", "guest-stopped": "stopping", hold: "holding", released: "ready", "stop-requested": "stopping", "ended-failed": "failed" },
  ready: { "guest-booting": "booting", "guest-ready": "ready", "guest-degraded": "degraded", "guest-stopping": "stopping", "guest-stopped": "stopping", "stop-requested": "stopping", "ended-failed": "failed" },
  degraded: { "guest-booting": "booting", "guest-ready": "ready", "guest-degraded": "degraded", "guest-stopping": "stopping", "guest-stopped": "stopping", hold: "holding", "stop-requested": "stopping", "ended-failed": "failed" },
  stopping: { "qemu-boot": "stopping", "qemu-restore": "stopping", "guest-booting": "stopping", "guest-ready": "stopping", "guest-degraded": "stopping", "guest-stopping": "stopping", "guest-stopped": "stopping", hold: "stopping", released: "stopping", "stop-requested": "stopping", "ended-ok": "stopped", "ended-failed": "failed" },
  stopped: { "guest-booting": "stopped", "guest-ready": "stopped", "guest-degraded": "stopped", "guest-stopping": "stopped", "guest-stopped": "stopped", "stop-requested": "stopped" },
  failed: { "guest-booting": "failed", "guest-ready": "failed", "guest-degraded": "failed", "guest-stopping": "failed", "guest-stopped": "failed", "stop-requested": "failed" },
};

for (const phase of RUN_PHASES) {
  test(`run state: every event in ${phase}`, () => {
    for (const key of EVENT_KEYS) {
      const want = EXPECTED[phase][key];
      if (want === undefined) {
        assert.throws(() => next(STATES[phase], EVENTS[key], 5), RunTransitionError, `${phase} + ${key} is outside the table`);
        continue;
      }
      const after = next(STATES[phase], EVENTS[key], 5);
      assert.equal(after.phase, want, `${phase} + ${key}`);
      // A change records when and why; no change keeps the state as it was.
      if (TABLE[phase][key] === "same") assert.equal(after, STATES[phase], `${phase} + ${key} changes nothing`);
      else assert.deepEqual([after.at, after.reason], [5, EVENTS[key].reason], `${phase} + ${key}`);
    }
  });
}

test("run state: what each state carries along the way", () => {
  let s = next(STATES.preparing, EVENTS["qemu-boot"], 1);
  assert.deepEqual(s, { phase: "booting", at: 1, reason: "boot", accel: "kvm", attempt: 1 });
  s = next(s, { type: "qemu-started", accel: "tcg", restore: false, reason: "TCG fallback" }, 2);
  assert.deepEqual(s, { phase: "booting", at: 2, reason: "TCG fallback", accel: "tcg", attempt: 2 });
  s = next(s, EVENTS["guest-ready"], 3);
  assert.deepEqual(s, { phase: "ready", at: 3, reason: "g", accel: "tcg" });
  s = next(s, EVENTS["stop-requested"], 4);
  assert.deepEqual(s, { phase: "stopping", at: 4, reason: "SIGTERM", accel: "tcg" });
  assert.deepEqual(next(s, EVENTS["ended-failed"], 5), { phase: "failed", at: 5, reason: "forced", code: 3 });
  assert.deepEqual(next(s, EVENTS["ended-ok"], 5), { phase: "stopped", at: 5, reason: "clean", code: 0 });
  // A restore that falls back to a boot counts its first boot attempt.
  assert.deepEqual(next(STATES.restoring, EVENTS["qemu-boot"], 6), { phase: "booting", at: 6, reason: "boot", accel: "kvm", attempt: 1 });
  // QEMU gone under a ready run: failed, with the launcher's exit code and why.
  assert.deepEqual(next(STATES.ready, { type: "ended", code: EXIT.failed, reason: "QEMU exited unexpectedly" }, 7), { phase: "failed", at: 7, reason: "QEMU exited unexpectedly", code: EXIT.failed });
});

test("run state: the control API's phase and the exit code are projections of it", () => {
  const phases = Object.fromEntries(RUN_PHASES.map((p) => [p, controlPhase(STATES[p], 0)]));
  assert.deepEqual(phases, { preparing: "booting", booting: "booting", restoring: "booting", holding: "booting", ready: "ready", degraded: "degraded", stopping: "stopping", stopped: "stopped", failed: "failed" });
  // A launcher-side problem (the agent silent, the host disk full) degrades a live run, never an ended one.
  const withHostError = Object.fromEntries(RUN_PHASES.map((p) => [p, controlPhase(STATES[p], 1)]));
  assert.deepEqual(withHostError, { preparing: "degraded", booting: "degraded", restoring: "degraded", holding: "degraded", ready: "degraded", degraded: "degraded", stopping: "stopping", stopped: "stopped", failed: "failed" });
  assert.deepEqual(RUN_PHASES.map((p) => exitCode(STATES[p])), [undefined, undefined, undefined, undefined, undefined, undefined, undefined, 0, 1]);
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
    // The run's end is a projection of the code: 0 stops, anything else fails.
    assert.equal(next(STATES.stopping, { type: "ended", code: v.code, reason: v.message }, 1).phase, phase);
    assert.match(v.message, words);
  });
}
