// The recipes and the README are users' files: every DINV_* variable they set must exist and its
// value must pass the launcher's own schema.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ALLOWED, ConfigError, parseEnv } from "../../host/config/env.js";
import { REPO } from "../helpers/dinv-process.js";

/** NAME=value (shell, -e) and NAME: value (YAML) settings of DINV_* variables in a document. */
export function dinvSettings(text: string): { name: string; value: string }[] {
  const found: { name: string; value: string }[] = [];
  const pattern = /\b(DINV_[A-Z0-9_]+)(?:=|:\s+)('[^']*'|"[^"]*"|[^\s`|)]+)/g;
  for (const m of text.matchAll(pattern)) {
    const raw = m[2]!;
    found.push({ name: m[1]!, value: /^['"]/.test(raw) ? raw.slice(1, -1) : raw });
  }
  return found;
}

for (const doc of ["docs/recipes.md", "README.md"]) {
  test(`${doc}: every DINV_* setting names a real variable with a value the launcher accepts`, () => {
    const text = readFileSync(join(REPO, doc), "utf8");
    const settings = dinvSettings(text);
    for (const { name, value } of settings) {
      assert.ok(name in ALLOWED, `${doc} sets ${name}, which dinv does not know`);
      try {
        parseEnv({ [name]: value }, { guestDir: "/guest" });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        assert.fail(`${doc}: ${name}=${value} is refused: ${err.problems.join("; ")}`);
      }
    }
    // Every variable the README's configuration table names is one the launcher knows.
    for (const m of text.matchAll(/^\| `(DINV_[A-Z0-9_]+)`/gm)) assert.ok(m[1]! in ALLOWED || m[1] === "DINV_LOG_LEVEL", `${doc} documents ${m[1]}, which dinv does not know`);
  });
}

test("dinvSettings finds shell, YAML and quoted settings", () => {
  assert.deepEqual(dinvSettings("-e DINV_MOUNTS=/data and\n      DINV_MEMORY: 2G\n DINV_DOCKERD_CONFIG='{\"mtu\": 1360}'"), [
    { name: "DINV_MOUNTS", value: "/data" },
    { name: "DINV_MEMORY", value: "2G" },
    { name: "DINV_DOCKERD_CONFIG", value: '{"mtu": 1360}' },
  ]);
});
