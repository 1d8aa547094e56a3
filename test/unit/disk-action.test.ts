// The disk decision has one owner (shared/disk-action.ts): the agent's function and the shell
// function the early start runs, rendered from the same table, agree on every probe.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { diskAction, renderDiskActionShell } from "../../shared/disk-action.js";
import { renderShellConstants } from "../../shared/shell-constants.js";

const probes: [number, string | undefined, boolean, string][] = [
  [2, undefined, true, "format"],
  [2, undefined, false, "refuse-blank"],
  [0, "ext4", true, "mount"],
  [0, "ext4", false, "mount"],
  [0, "xfs", true, "refuse-other"],
  [0, "btrfs", false, "refuse-other"],
  // A partition table: blkid exits 0 with PTTYPE and no TYPE.
  [0, undefined, true, "refuse-other"],
  // blkid's other failures (4: usage or I/O error, 8: ambivalent) never format.
  [4, undefined, true, "refuse-other"],
  [8, "ext4", true, "refuse-other"],
];

test("disk action: format only a blank disk the launcher created, mount ext4, leave the rest", () => {
  for (const [rc, type, may, want] of probes) assert.equal(diskAction(rc, type, may), want, `${rc} ${type} ${may}`);
});

test("disk action: the rendered shell function (as constants.sh carries it) decides the same, run by sh", () => {
  const script = [renderShellConstants(), ...probes.map(([rc, type, may]) => `dinv_disk_action "${rc}" "${type ?? ""}" "${may ? 1 : 0}"; echo "$disk_action"`)].join("\n");
  const out = spawnSync("sh", ["-c", script], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual(out.stdout.trim().split("\n"), probes.map((p) => p[3]));
  assert.ok(renderShellConstants().includes(renderDiskActionShell()));
});
