// The suites' layering: unit tests never boot a VM, so they import no VM helper.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../helpers/paths.js";

const VM_HELPERS = ["dinv-process", "test-dockerd", "registry"];

test("no unit test imports a helper that runs dinv, a dockerd or a registry", () => {
  const dir = join(REPO, "test/unit");
  const offenders = readdirSync(dir).filter((f) => f.endsWith(".ts")).flatMap((f) => {
    const text = readFileSync(join(dir, f), "utf8");
    return VM_HELPERS.filter((h) => new RegExp(`helpers/${h}\\.js`).test(text)).map((h) => `${f} imports ${h}`);
  });
  assert.deepEqual(offenders, []);
});
