// Automatic publishing end to end without a VM: the guest agent with a scripted dockerd, the host
// session and the AutoPublisher over the in-memory transport, and the publisher against a
// hostile guest's sets (a recording backend stands in for QEMU's SLIRP).

import { test } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { Agent } from "../../guest/agent.js";
import { GuestSession } from "../../host/guest-link/session.js";
import { LauncherState } from "../../host/control/state.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { publishPolicy } from "../../host/publish/policy.js";
import { AutoPublisher, type ForwardBackend } from "../../host/publish/publisher.js";
import { DinvStateSchema } from "../../shared/protocol/control.js";
import { GuestMessageSchema } from "../../shared/protocol/guest-messages.js";
import { HostMessageSchema } from "../../shared/protocol/host-messages.js";
import type { PublishedPort } from "../../shared/protocol/published.js";
import { createMemoryPair } from "../../shared/transport.js";
import { FakeSystem } from "../helpers/fake-system.js";
import { makeConfig } from "../helpers/make-config.js";

const silent = pino({ level: "silent" });
const clock = { now: () => Date.now(), uptimeMs: () => Math.round(performance.now()) };

class RecordingBackend implements ForwardBackend {
  calls: string[] = [];
  taken = new Set<number>();
  async add(f: { proto: string; bind: string; port: number }) {
    this.calls.push(`add ${f.proto}:${f.bind}:${f.port}`);
    if (this.taken.has(f.port)) throw new Error(`port ${f.port} is already in use on the launcher side`);
  }
  async remove(f: { proto: string; bind: string; port: number }) {
    this.calls.push(`remove ${f.proto}:${f.bind}:${f.port}`);
  }
}

async function until(check: () => boolean, what: string, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const web: PublishedPort = { proto: "tcp", scope: "all", port: 18080, container: "web" };
const local: PublishedPort = { proto: "tcp", scope: "loopback", port: 9000, container: "local" };

function setup(config = makeConfig()) {
  const system = new FakeSystem();
  const agent = new Agent(system, { bootId: "b1", version: "test", clock, dockerdTimeoutMs: 1000, publish: { debounceMs: 1, reconcileMs: 50, retryMs: 5 } });
  const session = new GuestSession(guestConfigFor(config), silent);
  const backend = new RecordingBackend();
  const publisher = new AutoPublisher(publishPolicy(config), backend, silent);
  const state = new LauncherState(config);
  publisher.onchange = (s) => state.setPublished(s);
  session.onpublished = (ports) => publisher.offer(ports);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  session.attach(host);
  agent.attach(guest);
  return { system, agent, session, backend, publisher, state };
}

test("a container publishing a port: forwarded once dockerd's event arrives; removed when it dies", async () => {
  const { system, session, backend, state } = setup();
  await until(() => session.status?.state.phase === "ready", "ready");
  system.portSource.listed = [local, web]; // sorted, as the real source lists them
  system.portSource.event();
  await until(() => backend.calls.length === 2, "two forwards");
  assert.deepEqual(backend.calls, ["add tcp:127.0.0.1:9000", "add tcp:127.0.0.1:18080"]);
  assert.deepEqual(system.relayed, [local], "the loopback-only port is relayed inside the guest");
  const snapshot = DinvStateSchema.parse(state.snapshot());
  assert.deepEqual(snapshot.forwards.filter((f) => f.source === "auto").map((f) => `${f.address}:${f.port} ${f.container}`), ["127.0.0.1:9000 local", "127.0.0.1:18080 web"]);
  system.portSource.listed = [local];
  system.portSource.event();
  await until(() => backend.calls.length === 3, "a removal");
  assert.equal(backend.calls[2], "remove tcp:127.0.0.1:18080");
});

test("a missed event is caught by the periodic full list", async () => {
  const { system, session, backend } = setup();
  await until(() => session.status?.state.phase === "ready", "ready");
  system.portSource.listed = [web];
  // No event: only the reconcile timer (50 ms here) can find it.
  await until(() => backend.calls.length === 1, "the forward from the periodic list");
});

test("dockerd exits: its forwards go; back, the events stream lists again", async () => {
  const { system, session, backend } = setup();
  await until(() => session.status?.state.phase === "ready", "ready");
  system.portSource.listed = [web];
  system.portSource.event();
  await until(() => backend.calls.length === 1, "forwarded");
  system.killDockerd("signal SIGKILL");
  await until(() => backend.calls.includes("remove tcp:127.0.0.1:18080"), "removed while dockerd is gone");
  // The agent restarts dockerd; the container is still listed: the forward comes back.
  await until(() => session.status?.state.phase === "ready" && session.status.seq > 0, "ready after the restart");
  await until(() => backend.calls.length === 3, "the forward added again");
  assert.deepEqual(backend.calls, ["add tcp:127.0.0.1:18080", "remove tcp:127.0.0.1:18080", "add tcp:127.0.0.1:18080"]);
});

/** The publisher alone, fed sets directly (no agent racing them). */
function publisherOnly(config = makeConfig()) {
  const backend = new RecordingBackend();
  const publisher = new AutoPublisher(publishPolicy(config), backend, silent);
  const state = new LauncherState(config);
  publisher.onchange = (s) => state.setPublished(s);
  return { publisher, backend, state };
}

test("a port taken on the launcher side is reported with the container, and retried when the set changes", async () => {
  const { publisher, backend, state } = publisherOnly();
  backend.taken.add(18080);
  publisher.offer([web]);
  await publisher.settled();
  const refused = DinvStateSchema.parse(state.snapshot()).refused;
  assert.equal(refused.length, 1);
  assert.match(`${refused[0]!.container} ${refused[0]!.reason}`, /^web port 18080 is already in use/);
  publisher.offer([web]); // the same set again (a heartbeat): no retry
  await publisher.settled();
  assert.equal(backend.calls.filter((c) => c === "add tcp:127.0.0.1:18080").length, 1);
  backend.taken.clear();
  publisher.offer([web, { ...local, scope: "all" }]);
  await publisher.settled();
  assert.equal(backend.calls.filter((c) => c === "add tcp:127.0.0.1:18080").length, 2, "retried with the changed set");
  assert.deepEqual(DinvStateSchema.parse(state.snapshot()).refused, []);
});

test("a hostile guest: own ports, out-of-range ports, a huge set and a flood of changes", async () => {
  const config = makeConfig({ dockerPort: 2375, publish: { mode: "auto", ports: [{ from: 1024, to: 65535 }] } });
  const { publisher, backend } = publisherOnly(config);
  publisher.offer([{ ...web, port: 2375 }, { ...web, port: 22 }]);
  await publisher.settled();
  assert.deepEqual(backend.calls, [], "neither the docker API port nor a port outside DINV_PUBLISH_PORTS");
  publisher.offer(Array.from({ length: 4000 }, (_, i) => ({ ...web, port: 20_000 + i })));
  await publisher.settled();
  assert.deepEqual(backend.calls, [], "a set above the limit opens nothing");
  // 200 different sets as fast as the guest can send them: applied at a few a second, the last one wins.
  const t0 = Date.now();
  for (let i = 0; i < 200; i++) publisher.offer([{ ...web, port: 30_000 + i }]);
  await publisher.settled();
  const adds = (backend.calls as string[]).filter((c) => c.startsWith("add"));
  assert.ok(adds.length <= 3, `${adds.length} sets applied, not 200`);
  assert.equal(adds.at(-1), "add tcp:127.0.0.1:30199", "the latest set is the one in force");
  assert.ok(Date.now() - t0 < 2000);
  assert.deepEqual(publisher.status().forwards.map((f) => f.port), [30_199]);
});

test("QEMU restarted: the publisher forgets its forwards, and opens them again on the next set", async () => {
  const { publisher, backend } = publisherOnly();
  publisher.offer([web]);
  await publisher.settled();
  publisher.reset();
  assert.deepEqual(publisher.status().forwards, []);
  publisher.offer([web]);
  await publisher.settled();
  assert.deepEqual(backend.calls, ["add tcp:127.0.0.1:18080", "add tcp:127.0.0.1:18080"]);
});

test("with passt the forwards are refused with the reason, nothing crashes", async () => {
  const config = makeConfig();
  const publisher = new AutoPublisher(publishPolicy(config), { unavailable: "passt cannot add forwards while it runs" }, silent);
  publisher.offer([web]);
  await publisher.settled();
  assert.deepEqual(publisher.status().refused.map((r) => r.reason), ["passt cannot add forwards while it runs"]);
});

test("dinv status and dinv events show the published forwards and the refused ports", async () => {
  const { eventLines, summary } = await import("../../host/cli/format.js");
  const { publisher, backend, state } = publisherOnly(makeConfig({ bindAddr: "0.0.0.0" }));
  const before = DinvStateSchema.parse(state.snapshot());
  backend.taken.add(9000);
  publisher.offer([{ ...local, scope: "all" }, web]);
  await publisher.settled();
  const after = DinvStateSchema.parse(state.snapshot());
  assert.match(summary(after), /published:\n {4}tcp 0\.0\.0\.0:18080 -> guest 18080 {2}\(web\)/);
  assert.match(summary(after), /not published: tcp 9000 \(local\): port 9000 is already in use/);
  const lines = eventLines(before, after);
  assert.ok(lines.includes("published tcp 0.0.0.0:18080 (web)"), lines.join("\n"));
  assert.ok(lines.some((l) => /^not published tcp 9000 \(local\)/.test(l)), lines.join("\n"));
  publisher.offer([]);
  await publisher.settled();
  assert.ok(eventLines(after, DinvStateSchema.parse(state.snapshot())).includes("unpublished tcp 0.0.0.0:18080 (web)"));
});
