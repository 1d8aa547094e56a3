// The recipes and the README are users' files: every DINV_* variable they set must exist and its
// value must pass the launcher's own schema.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ALLOWED, ConfigError, parseEnv } from "../../host/config/env.js";
import { REPO } from "../helpers/paths.js";

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
    for (const { name, value: written } of settings) {
      assert.ok(name in ALLOWED, `${doc} sets ${name}, which dinv does not know`);
      // A CI's own variables ($CI_PROJECT_PATH, ${{ github.repository }}) are checked as the CI substitutes them.
      const value = written.replace(/\$\{\{[^}]*\}\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, "x");
      try {
        parseEnv({ [name]: value, ...(name.startsWith("DINV_CACHE_") && name !== "DINV_CACHE_DIR" ? { DINV_CACHE_DIR: "/cache" } : {}) }, { guestDir: "/guest" });
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

/** The YAML blocks of a Markdown document. */
const yamlBlocks = (text: string) => [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

test("every Kubernetes manifest of the recipes validates against the Kubernetes schema", async () => {
  const { parse } = await import("yaml");
  const { Pod } = await import("kubernetes-models/v1");
  const docs = yamlBlocks(readFileSync(join(REPO, "docs/recipes.md"), "utf8")).map((b) => parse(b) as Record<string, unknown>);
  const manifests = docs.filter((d) => d && typeof d === "object" && "apiVersion" in d && "kind" in d);
  const templates = docs.filter((d) => d && typeof d === "object" && "template" in d);
  assert.ok(manifests.length >= 1 && templates.length >= 1, "the recipes hold a Pod and a Pod template");
  for (const m of manifests) {
    assert.equal(`${m.apiVersion}/${m.kind}`, "v1/Pod", "only Pods in the recipes (add the model here for other kinds)");
    new Pod(m as never).validate();
  }
  for (const t of templates) new Pod({ metadata: { name: "template" }, spec: (t.template as { spec: unknown }).spec } as never).validate();
  // No recipe asks for privileges.
  for (const d of [...manifests, ...templates]) assert.doesNotMatch(JSON.stringify(d), /"privileged":true/);
  // And the dinv containers' DINV_* values pass the launcher's schema.
  for (const d of manifests) {
    const dinv = (d.spec as { containers: { name: string; env?: { name: string; value: string }[] }[] }).containers.find((c) => c.name === "dinv");
    const env = Object.fromEntries((dinv?.env ?? []).map((e) => [e.name, e.value]));
    parseEnv(env, { guestDir: "/guest" });
  }
});

test("the compose recipe is valid YAML with a healthcheck-gated job", async () => {
  const { parse } = await import("yaml");
  const compose = yamlBlocks(readFileSync(join(REPO, "docs/recipes.md"), "utf8")).map((b) => parse(b) as { services?: Record<string, { depends_on?: unknown; healthcheck?: unknown }> }).find((d) => d?.services?.dinv);
  assert.ok(compose, "a compose file with a dinv service");
  assert.deepEqual(compose.services!.job!.depends_on, { dinv: { condition: "service_healthy" } });
  assert.ok(compose.services!.dinv!.healthcheck);
});

test("the README's configuration table names every variable the launcher reads", () => {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const missing = Object.keys(ALLOWED).filter((name) => !new RegExp(`^\\| [^|]*\`${name}\``, "m").test(readme));
  assert.deepEqual(missing, []);
});

test("the README's commands table: the commands the CLI has, with the exit codes each one uses", async () => {
  const { COMMAND_EXITS, HELP } = await import("../../host/cli/commands.js");
  const { EXIT } = await import("../../host/run/launch-options.js");
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Commands"), readme.indexOf("\n## ", readme.indexOf("## Commands") + 5));
  const rows = new Map(section.split("\n").filter((l) => l.startsWith("| `dinv ")).map((l) => {
    const [, command, , exits] = l.split("|").map((c) => c.trim());
    return [/^`dinv ([a-z]+(?: [a-z]+)?)/.exec(command!)![1]!.replace(/ \[.*$/, ""), exits!] as const;
  }));
  const codes = (text: string) => [...text.matchAll(/(?:^|, )(\d)\b/g)].map((m) => Number(m[1])).sort();
  for (const [command, exits] of Object.entries(COMMAND_EXITS)) {
    assert.ok(command in HELP, `${command} has help`);
    const row = rows.get(command);
    assert.ok(row, `the README lists dinv ${command}`);
    assert.deepEqual(codes(row), Object.keys(exits).map(Number).sort(), `dinv ${command}'s exit codes`);
  }
  assert.deepEqual(codes(rows.get("run")!), Object.values(EXIT).sort(), "dinv run's exit codes");
});
