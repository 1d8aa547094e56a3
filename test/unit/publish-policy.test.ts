// Automatic publishing, the pure parts: what a guest container list publishes, which of it the
// launcher forwards under the policy, and the difference to apply.

import { test } from "node:test";
import assert from "node:assert/strict";
import { publishedPorts, samePorts } from "../../guest/publish/ports.js";
import { desiredForwards, diffForwards, forwardId, MAX_AUTO_FORWARDS, publishPolicy, type AutoForward } from "../../host/publish/policy.js";
import { hostfwdCommands } from "../../host/net/forwards.js";
import type { PublishedPort } from "../../shared/protocol/published.js";
import { makeConfig } from "../helpers/make-config.js";

test("publishedPorts: one entry per protocol and port, IPv4 and IPv6 merged, unreachable addresses and unpublished ports left out", () => {
  const ports = publishedPorts([
    { Names: ["/web"], Ports: [
      { IP: "0.0.0.0", PrivatePort: 80, PublicPort: 18080, Type: "tcp" },
      { IP: "::", PrivatePort: 80, PublicPort: 18080, Type: "tcp" },
      { PrivatePort: 443, Type: "tcp" }, // exposed, not published
    ] } as never,
    { Names: ["/dns"], Ports: [{ IP: "0.0.0.0", PublicPort: 5353, Type: "udp" }, { IP: "0.0.0.0", PublicPort: 5353, Type: "tcp" }] },
    { Names: ["/local"], Ports: [{ IP: "127.0.0.1", PublicPort: 9000, Type: "tcp" }] },
    { Names: ["/bridge-only"], Ports: [{ IP: "172.19.0.1", PublicPort: 9100, Type: "tcp" }] },
    { Names: ["/sctp"], Ports: [{ IP: "0.0.0.0", PublicPort: 9200, Type: "sctp" }] },
    { Names: [], Ports: null },
  ]);
  assert.deepEqual(ports, [
    { proto: "tcp", scope: "all", port: 5353, container: "dns" },
    { proto: "udp", scope: "all", port: 5353, container: "dns" },
    { proto: "tcp", scope: "loopback", port: 9000, container: "local" },
    { proto: "tcp", scope: "all", port: 18080, container: "web" },
  ]);
  assert.ok(samePorts(ports, publishedPorts([...[{ Names: ["/web"], Ports: [{ IP: "::", PublicPort: 18080, Type: "tcp" }] }], { Names: ["/dns"], Ports: [{ PublicPort: 5353, Type: "udp" }, { PublicPort: 5353, Type: "tcp" }] }, { Names: ["/local"], Ports: [{ IP: "::1", PublicPort: 9000, Type: "tcp" }] }])));
});

const p = (port: number, extra: Partial<PublishedPort> = {}): PublishedPort => ({ proto: "tcp", scope: "all", port, container: `c${port}`, ...extra });

const policyCases: { name: string; config: Parameters<typeof makeConfig>[0]; ports: PublishedPort[]; forwards: string[]; refused: RegExp[] }[] = [
  { name: "every address: DINV_BIND_ADDR; loopback only: the launcher's loopback only", config: { bindAddr: "0.0.0.0" }, ports: [p(80), p(9000, { scope: "loopback" }), p(53, { proto: "udp" })], forwards: ["tcp:0.0.0.0:80", "tcp:127.0.0.1:9000", "udp:0.0.0.0:53"], refused: [] },
  { name: "the docker API's own port is never published", config: { dockerPort: 2375 }, ports: [p(2375), p(8080)], forwards: ["tcp:127.0.0.1:8080"], refused: [/port 2375 is the docker API forward/] },
  { name: "nor the control port", config: { control: { gid: undefined, tcpPort: 7000 } }, ports: [p(7000)], forwards: [], refused: [/port 7000 is the control API/] },
  { name: "only inside DINV_PUBLISH_PORTS", config: { publish: { mode: "auto", ports: [{ from: 1024, to: 65535 }] } }, ports: [p(80), p(8080)], forwards: ["tcp:127.0.0.1:8080"], refused: [/port 80 is outside DINV_PUBLISH_PORTS/] },
  { name: "a port DINV_TCP_PORTS forwards already is left to it", config: { tcpPorts: [8080] }, ports: [p(8080), p(8080, { proto: "udp" })], forwards: ["udp:127.0.0.1:8080"], refused: [] },
];

for (const c of policyCases) {
  test(`policy: ${c.name}`, () => {
    const d = desiredForwards(c.ports, publishPolicy(makeConfig(c.config)));
    assert.ok(!("tooMany" in d));
    assert.deepEqual(d.forwards.map(forwardId), c.forwards);
    assert.equal(d.refused.length, c.refused.length, JSON.stringify(d.refused));
    c.refused.forEach((re, i) => assert.match(d.refused[i]!.reason, re));
  });
}

test(`policy: a set of more than ${MAX_AUTO_FORWARDS} forwards is refused whole`, () => {
  const policy = publishPolicy(makeConfig());
  const many = Array.from({ length: MAX_AUTO_FORWARDS + 1 }, (_, i) => p(10_000 + i));
  assert.deepEqual(desiredForwards(many, policy), { tooMany: MAX_AUTO_FORWARDS + 1 });
  assert.ok(!("tooMany" in desiredForwards(many.slice(1), policy)));
});

const f = (port: number, bind = "127.0.0.1", container = `c${port}`): AutoForward => ({ proto: "tcp", bind, port, container });
const diffCases: { name: string; desired: AutoForward[]; open: AutoForward[]; add: string[]; remove: string[] }[] = [
  { name: "nothing open: add all", desired: [f(1), f(2)], open: [], add: ["tcp:127.0.0.1:1", "tcp:127.0.0.1:2"], remove: [] },
  { name: "same set: nothing", desired: [f(1)], open: [f(1)], add: [], remove: [] },
  { name: "another container on the same port: a label, nothing to do", desired: [f(1, "127.0.0.1", "b")], open: [f(1, "127.0.0.1", "a")], add: [], remove: [] },
  { name: "gone: remove", desired: [], open: [f(1), f(2)], add: [], remove: ["tcp:127.0.0.1:1", "tcp:127.0.0.1:2"] },
  { name: "scope changed: remove and add", desired: [f(1, "0.0.0.0")], open: [f(1, "127.0.0.1")], add: ["tcp:0.0.0.0:1"], remove: ["tcp:127.0.0.1:1"] },
];
for (const c of diffCases) {
  test(`diffForwards: ${c.name}`, () => {
    const d = diffForwards(c.desired, c.open);
    assert.deepEqual(d.add.map(forwardId), c.add);
    assert.deepEqual(d.remove.map(forwardId), c.remove);
  });
}

test("SLIRP forwards are HMP hostfwd commands on the guest network's netdev, to the same guest port", () => {
  assert.deepEqual(hostfwdCommands({ proto: "tcp", bind: "0.0.0.0", hostPort: 18080, guestPort: 18080 }), { add: "hostfwd_add net0 tcp:0.0.0.0:18080-:18080", remove: "hostfwd_remove net0 tcp:0.0.0.0:18080" });
  assert.deepEqual(hostfwdCommands({ proto: "udp", bind: "127.0.0.1", hostPort: 53, guestPort: 53 }), { add: "hostfwd_add net0 udp:127.0.0.1:53-:53", remove: "hostfwd_remove net0 udp:127.0.0.1:53" });
});
