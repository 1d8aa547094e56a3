// The seccomp profile the image ships: Docker's default plus exactly unshare(CLONE_FS).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error: a plain ES module of the image's build, without type declarations
import { CLONE_FS, DINV_RULE, deriveProfile } from "../../image/make-seccomp.mjs";
import { REPO } from "../helpers/paths.js";

const tiny = { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read", "write"], action: "SCMP_ACT_ALLOW" }] };

test("deriveProfile adds the one unshare(CLONE_FS) rule and keeps every other rule", () => {
  const out = deriveProfile(tiny);
  assert.deepEqual(out.syscalls[0], tiny.syscalls[0]);
  assert.equal(out.syscalls.length, 2);
  assert.deepEqual(out.syscalls[1].args, [{ index: 0, value: CLONE_FS, valueTwo: 0, op: "SCMP_CMP_EQ" }]);
  assert.deepEqual(deriveProfile(out), out, "deriving twice adds nothing");
});

test("deriveProfile refuses what is not a default-deny profile", () => {
  assert.throws(() => deriveProfile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [] }));
  assert.throws(() => deriveProfile({ defaultAction: "SCMP_ACT_ERRNO" }));
});

test("the shipped profile is Docker's default-deny profile plus only dinv's rule", () => {
  const shipped = JSON.parse(readFileSync(join(REPO, "image/dinv-seccomp.json"), "utf8"));
  assert.equal(shipped.defaultAction, "SCMP_ACT_ERRNO");
  const ours = shipped.syscalls.filter((r: { comment?: string }) => r.comment?.startsWith("dinv:"));
  assert.deepEqual(ours, [DINV_RULE]);
  // unshare without a flag filter is allowed only behind CAP_SYS_ADMIN, as in Docker's default.
  const unshare = shipped.syscalls.filter((r: { names: string[] }) => r.names.includes("unshare") && r !== ours[0]);
  for (const rule of unshare) assert.deepEqual(rule.includes?.caps, ["CAP_SYS_ADMIN"], JSON.stringify(rule));
  // Docker 26's list (it knows syscalls Docker 20.10's did not, e.g. clone3 behind CAP_SYS_ADMIN).
  const names = new Set(shipped.syscalls.flatMap((r: { names: string[] }) => r.names));
  for (const n of ["faccessat2", "close_range", "epoll_pwait2", "openat2", "clone3"]) assert.ok(names.has(n), n);
});
