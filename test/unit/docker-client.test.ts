// The image's docker wrapper (image/docker-client) takes DOCKER_HOST and the TLS variables from the
// file the launcher writes (host/run/command.ts renders it), and never overrides a caller's own.
// Run for real with sh; /usr/bin/docker is replaced in a copy by a script that prints its env.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerClientEnvFile } from "../../host/run/command.js";
import { RUN_FILES } from "../../host/run/run-files.js";

const REPO = join(import.meta.dirname, "../..");

function wrapper() {
  const dir = mkdtempSync(join(tmpdir(), "dinv-wrapper-"));
  const fake = join(dir, "docker");
  writeFileSync(fake, `#!/bin/sh\necho "HOST=\${DOCKER_HOST:-} VERIFY=\${DOCKER_TLS_VERIFY:-} CERTS=\${DOCKER_CERT_PATH:-} ARGS=$*"\n`);
  chmodSync(fake, 0o755);
  const script = join(dir, "docker-client");
  const text = readFileSync(join(REPO, "image/docker-client"), "utf8");
  assert.ok(text.includes(`/${RUN_FILES.dockerClientEnv}"`), "the wrapper reads the file the launcher writes");
  writeFileSync(script, text.replaceAll("/usr/bin/docker", fake));
  const runDir = join(dir, "run");
  const run = (env: Record<string, string>) => spawnSync("sh", [script, "ps"], { env: { PATH: process.env.PATH ?? "", DINV_RUN_DIR: runDir, ...env }, encoding: "utf8" }).stdout.trim();
  return { runDir, run };
}

test("docker wrapper: the launcher's DOCKER_HOST and TLS variables; a caller's own win; a link is not followed", () => {
  const { runDir, run } = wrapper();
  spawnSync("mkdir", ["-p", runDir]);
  // No launcher yet: docker's own default.
  assert.equal(run({}), "HOST= VERIFY= CERTS= ARGS=ps");
  writeFileSync(join(runDir, RUN_FILES.dockerClientEnv), dockerClientEnvFile({ dockerHost: "tcp://127.0.0.1:2376", dockerCertPath: "/certs/client" }));
  assert.equal(run({}), "HOST=tcp://127.0.0.1:2376 VERIFY=1 CERTS=/certs/client ARGS=ps");
  assert.equal(run({ DOCKER_HOST: "tcp://127.0.0.1:2375" }), "HOST=tcp://127.0.0.1:2375 VERIFY= CERTS= ARGS=ps", "the caller's DOCKER_HOST is kept");
  writeFileSync(join(runDir, RUN_FILES.dockerClientEnv), dockerClientEnvFile({ dockerHost: "tcp://127.0.0.1:2375" }));
  assert.equal(run({}), "HOST=tcp://127.0.0.1:2375 VERIFY= CERTS= ARGS=ps");
});

test("docker wrapper: a link planted in the file's place is ignored", () => {
  const { runDir, run } = wrapper();
  spawnSync("mkdir", ["-p", runDir]);
  const planted = join(runDir, "planted");
  writeFileSync(planted, "DOCKER_HOST=tcp://evil:1\nPATH=/nowhere\nLD_PRELOAD=/x.so\n");
  symlinkSync(planted, join(runDir, RUN_FILES.dockerClientEnv));
  assert.equal(run({}), "HOST= VERIFY= CERTS= ARGS=ps");
});
