// A restored guest's renewal, host session and guest agent together over the real codec: the
// launcher of the new run hears nothing from the saving run's session, the renew goes first, and
// the renewed hello (a new boot id) starts this run's session.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent } from "../../guest/agent.js";
import { GuestSession } from "../../host/guest-link/session.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { GuestMessageSchema } from "../../shared/protocol/guest-messages.js";
import { HostMessageSchema, type Renew } from "../../shared/protocol/host-messages.js";
import { createMemoryPair } from "../../shared/transport.js";
import { makeConfig } from "../helpers/make-config.js";
import { FakeSystem } from "../helpers/fake-system.js";
import { parseRenewOutput } from "../../guest/system/renew.js";

import { clock, silent, until } from "../helpers/agent-clock.js";

const renew = (over: Partial<Renew> = {}): Renew => ({ type: "renew", unixTimeMs: 1_800_000_000_000, entropy: Buffer.alloc(64, 7).toString("base64"), sockUid: 1000, sockGid: 999, ...over });

/** A guest that booted and became ready under the saving run's session. */
async function readyGuest(system = new FakeSystem()) {
  const agent = new Agent(system, { bootId: "saved-boot", version: "test", clock, dockerdTimeoutMs: 1000 });
  void agent.prepare();
  const saving = new GuestSession(guestConfigFor(makeConfig()), silent);
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  saving.attach(host);
  agent.attach(guest);
  await until(() => saving.status?.state.phase === "ready", "ready");
  return { agent, system, guest };
}

/** A new run's session that expects a renewal, connected to the (restored) agent; its answers collected. */
function renewingSession(agent: Agent, over: Partial<Renew> = {}) {
  const session = new GuestSession(guestConfigFor(makeConfig()), silent);
  const answers: { ok: boolean; detail: string }[] = [];
  let hellos = 0;
  session.onrenewed = (r) => answers.push(r);
  session.onhello = () => hellos++;
  session.expectRenewal(renew(over));
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  session.attach(host);
  // The agent greets the new channel by itself (a reconnect): its old boot id is not this run's guest.
  agent.attach(guest);
  return { session, answers, hellos: () => hellos };
}

test("renewal: the restored agent is renewed first, then says hello under a new boot id, ready", async () => {
  const { agent, system } = await readyGuest();
  const { session, answers } = renewingSession(agent);
  await until(() => answers.length === 1, "renewed");
  assert.deepEqual(answers[0], { ok: true, detail: "renewed" });
  assert.deepEqual(system.renewals, [{ unixTimeMs: 1_800_000_000_000, sockUid: 1000, sockGid: 999 }]);
  await until(() => session.status?.state.phase === "ready", "ready under the new boot");
  assert.match(session.hello!.bootId, /^renewed-1-07070707$/);
  assert.equal(session.status!.bootId, session.hello!.bootId);
  assert.ok(!system.calls.slice(system.calls.indexOf("renew")).includes("dockerd"), "dockerd is not started again");
});

test("renewal: messages of the saving run's session before the renewed hello are not taken", async () => {
  const { agent } = await readyGuest();
  const session = new GuestSession(guestConfigFor(makeConfig()), silent);
  let hellos = 0;
  session.onhello = () => hellos++;
  const [host, guest] = createMemoryPair(GuestMessageSchema, HostMessageSchema);
  // Attached before the renewal is known: what the agent says now belongs to the saving run.
  session.attach(host);
  agent.attach(guest);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(hellos, 1, "a plain attach is a plain hello");
  const other = renewingSession(agent);
  await until(() => other.answers.length === 1, "renewed");
  await until(() => other.session.status !== undefined, "status");
  assert.equal(other.hellos(), 1, "only the renewed hello counts");
  assert.notEqual(other.session.hello!.bootId, "saved-boot");
});

test("renewal: a guest that cannot renew says why, and a second renew is refused", async () => {
  const system = new FakeSystem();
  const { agent } = await readyGuest(system);
  system.renewFails = "dinv-renew: RNDRESEEDCRNG: Operation not permitted";
  const { session, answers } = renewingSession(agent);
  await until(() => answers.length === 1, "answer");
  assert.equal(answers[0]!.ok, false);
  assert.match(answers[0]!.detail, /RNDRESEEDCRNG/);
  assert.equal(session.hello, undefined, "a guest that could not be renewed is not this run's guest");
  const again = renewingSession(agent);
  await until(() => again.answers.length === 1, "second answer");
  assert.deepEqual(again.answers[0], { ok: false, detail: "this guest was renewed already" });
});

test("renew message: entropy must be 64 bytes of base64, ids in range", () => {
  assert.ok(HostMessageSchema.safeParse(renew()).success);
  assert.ok(!HostMessageSchema.safeParse(renew({ entropy: "abc" })).success);
  assert.ok(!HostMessageSchema.safeParse(renew({ sockUid: -1 })).success);
  assert.ok(!HostMessageSchema.safeParse(renew({ unixTimeMs: 0 })).success);
});

test("the renewal helper's answer: a version 4 boot id and the engine ID's copies, nothing else", () => {
  assert.deepEqual(parseRenewOutput("0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b 3\n"), { bootId: "0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b", engineIdCopies: 3 });
  assert.deepEqual(parseRenewOutput("0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b 0"), { bootId: "0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b", engineIdCopies: 0 });
  for (const bad of ["", "0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b", "0b2c3d4e-5f60-1718-8a9b-0c1d2e3f4a5b 1", "0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b -1", "0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b 1 2"]) {
    assert.equal(parseRenewOutput(bad), undefined, bad);
  }
});

test("renewal with another dockerd configuration: dockerd restarted with it, reported, and a later crash restarts it with it too", async () => {
  const { agent, system } = await readyGuest();
  const spec = { ...guestConfigFor(makeConfig({ bip: "172.29.0.1/16" })).dockerd };
  const { session, answers } = renewingSession(agent, { dockerd: spec });
  await until(() => answers.length === 1, "renewed");
  assert.equal(answers[0]!.ok, true, answers[0]!.detail);
  assert.match(answers[0]!.detail, /^renewed; reconfigured: dockerd restarted with this run's configuration in \d+ ms$/);
  const after = system.calls.slice(system.calls.indexOf("renew"));
  assert.deepEqual(after.filter((c) => c.startsWith("stop") || c === "dockerd" || c === "ping"), ["stop:5", "dockerd", "ping"]);
  assert.deepEqual(system.dockerdSpecs.at(-1), spec);
  await until(() => session.status?.state.phase === "ready", "ready under the new boot");
  // The planned stop was no crash; a crash now restarts dockerd with this run's configuration.
  const starts = system.dockerdSpecs.length;
  system.killDockerd("signal SIGKILL");
  await until(() => system.dockerdSpecs.length === starts + 1, "restarted after the crash", 5000);
  assert.deepEqual(system.dockerdSpecs.at(-1), spec);
});
