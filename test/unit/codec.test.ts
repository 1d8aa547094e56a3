import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeMessage, encodeMessage } from "../../shared/protocol/codec.js";
import { GuestMessageSchema } from "../../shared/protocol/guest-messages.js";
import { HostMessageSchema } from "../../shared/protocol/host-messages.js";

const status = {
  type: "status", seq: 3, at: 1, uptimeMs: 2, bootId: "b",
  state: { phase: "degraded", errors: [{ step: "disks", message: "foreign fs", hint: "move it" }] },
  steps: [{ name: "disks", state: "failed", startedMs: 1, endedMs: 2, detail: "x" }],
};

test("round trip of every message type", () => {
  const guest = [
    { type: "hello", protocolVersion: 1, bootId: "b", agentVersion: "0.1.0", uptimeMs: 1000, initStartedMs: 3 },
    status,
    { type: "log", level: "warn", msg: "m", source: "dockerd" },
    { type: "published", seq: 2, at: 1, bootId: "b", ports: [{ proto: "tcp", scope: "all", port: 8080, container: "web" }, { proto: "udp", scope: "loopback", port: 53, container: "dns" }] },
  ];
  for (const m of guest) assert.deepEqual(decodeMessage(GuestMessageSchema, encodeMessage(m)), { ok: true, value: m });
  const host = [
    { type: "status-request" },
    { type: "shutdown", timeoutSeconds: 5 },
    { type: "config", config: { disks: [{ role: "docker", serial: "dinv-docker", mountPoint: "/var/lib/docker", label: "dinv-docker", mayFormat: false }], shares: [], dockerd: { bip: "172.19.0.1/16", tcpPort: 2375, shutdownTimeoutSeconds: 5, sockUid: 0, sockGid: 0, daemonConfig: {} } } },
  ];
  for (const m of host) assert.deepEqual(decodeMessage(HostMessageSchema, encodeMessage(m)), { ok: true, value: m });
});

const rejected: [string, Uint8Array, string, RegExp][] = [
  ["invalid UTF-8", Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), "encoding", /UTF-8/],
  ["not JSON", Buffer.from("{nope"), "json", /invalid JSON/],
  ["unknown type", encodeMessage({ type: "exec", cmd: "rm -rf /" }), "schema", /^schema: type: /],
  ["missing field", encodeMessage({ type: "hello", protocolVersion: 1 }), "schema", /^schema: \w+: /],
  ["wrong field type", encodeMessage({ ...status, seq: "3" }), "schema", /^schema: seq: /],
  ["degraded without errors", encodeMessage({ ...status, state: { phase: "degraded", errors: [] } }), "schema", /^schema: state\.errors: /],
  ["over-long string", encodeMessage({ type: "log", level: "info", msg: "x".repeat(5000) }), "schema", /^schema: msg: /],
  ["deep JSON", Buffer.from("[".repeat(100000) + "]".repeat(100000)), "depth", /nested deeper/],
  ["a bare number", Buffer.from("42"), "schema", /^schema: \(root\): /],
];

for (const [name, bytes, kind, reason] of rejected) {
  test(`rejects ${name} with a reason, without throwing`, () => {
    const decoded = decodeMessage(GuestMessageSchema, bytes);
    assert.equal(decoded.ok, false);
    if (!decoded.ok) {
      assert.equal(decoded.kind, kind);
      assert.match(decoded.reason, reason);
    }
  });
}

test("brackets inside strings do not count as depth", () => {
  const m = { type: "log", level: "info", msg: "[".repeat(200) };
  assert.equal(decodeMessage(GuestMessageSchema, encodeMessage(m)).ok, true);
});
