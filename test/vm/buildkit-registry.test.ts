// VM suite: what CI does all day against a current Docker. One guest, reached through the forward
// with the guest Docker's own CLI and its buildx plugin: a BuildKit build offline (cache mount,
// heredoc, FROM a local image), and a push to / pull from a real registry on the launcher side's
// loopback (Debian's docker-registry), reached from the guest as 10.0.2.2.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientDocker } from "../helpers/clients.js";
import { DinvProcess } from "../helpers/dinv-process.js";
import { importBusybox } from "../helpers/docker-cli.js";
import { TestRegistry } from "../helpers/registry.js";

const DOCKERFILE = `FROM dinv-test/busybox:latest
ARG BUST=1
RUN --mount=type=cache,target=/cache sh -c 'echo "run $BUST" >> /cache/runs; wc -l < /cache/runs > /runs'
RUN <<EOF
echo from-a-heredoc > /heredoc
EOF
CMD ["cat", "/runs", "/heredoc"]
`;

describe("BuildKit and a real registry through the forward", () => {
  let dinv: DinvProcess;
  let registry: TestRegistry;
  const context = mkdtempSync(join(tmpdir(), "dinv-build-"));
  const docker = (args: string[], input?: Buffer) => clientDocker(dinv.dockerHost, args, { ...(input ? { input } : {}) });

  before(async () => {
    registry = await TestRegistry.start();
    dinv = await DinvProcess.create({ DINV_INSECURE_REGISTRIES: registry.fromGuest });
    dinv.start();
    const state = await dinv.waitUntilSettled();
    assert.equal(state.phase, "ready", dinv.tail());
    importBusybox(dinv.dockerHost);
    writeFileSync(join(context, "Dockerfile"), DOCKERFILE);
  });

  after(async () => {
    await dinv?.kill();
    registry?.stop();
  });

  test("docker build uses BuildKit: a cache mount and a heredoc build offline, FROM a local image", () => {
    const build = docker(["build", "--progress=plain", "-t", "dinv-test/built", context]);
    assert.equal(build.code, 0, build.stderr);
    // BuildKit's plain progress ("#N [stage-0 2/3] RUN --mount=..."), not the legacy builder's "Step 2/4".
    assert.match(build.stderr, /#\d+ \[stage-0 2\/3\] RUN --mount=type=cache/);
    assert.doesNotMatch(build.stderr, /docker\/dockerfile|resolve image config/, "no frontend image is pulled");
    assert.equal(docker(["run", "--rm", "dinv-test/built"]).stdout, "1\nfrom-a-heredoc\n");
  });

  test("a second build hits BuildKit's cache", () => {
    const again = docker(["build", "--progress=plain", "-t", "dinv-test/built", context]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /#\d+ \[stage-0 2\/3\] RUN --mount=type=cache.*\n#\d+ CACHED/);
    assert.match(again.stderr, /#\d+ \[stage-0 3\/3\] RUN <<EOF.*\n#\d+ CACHED/);
  });

  test("docker buildx build works through the same forward; the cache mount keeps its files across builds", () => {
    // Another BUST: the RUN step runs again, and finds what the first run wrote into the cache mount.
    const buildx = docker(["buildx", "build", "--progress=plain", "--build-arg", "BUST=2", "-t", "dinv-test/buildx", context]);
    assert.equal(buildx.code, 0, buildx.stderr);
    assert.doesNotMatch(buildx.stderr, /RUN --mount=type=cache.*\n#\d+ CACHED/);
    assert.equal(docker(["run", "--rm", "dinv-test/buildx"]).stdout, "2\nfrom-a-heredoc\n");
  });

  test("push to and pull from a real registry round-trip an image, digest equal", async () => {
    const ref = `${registry.fromGuest}/dinv-test/roundtrip:1`;
    assert.equal(docker(["tag", "dinv-test/built", ref]).code, 0);
    const push = docker(["push", ref]);
    assert.equal(push.code, 0, push.stderr);
    const pushed = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(pushed, push.stdout);
    // The registry on this machine's loopback holds it.
    const tags = (await fetch(`http://${registry.local}/v2/dinv-test/roundtrip/tags/list`).then((r) => r.json())) as { tags?: string[] };
    assert.deepEqual(tags.tags, ["1"]);
    assert.equal(docker(["image", "rm", ref, "dinv-test/built"]).code, 0);
    const pull = docker(["pull", ref]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, new RegExp(`Digest: ${pushed}`));
    const digests = docker(["image", "inspect", "--format", "{{json .RepoDigests}}", ref]).stdout;
    assert.match(digests, new RegExp(`/dinv-test/roundtrip@${pushed}`));
    assert.equal(docker(["run", "--rm", ref]).stdout.split("\n")[1], "from-a-heredoc");
  });
});
