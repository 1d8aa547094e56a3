// The guest network: the port forwards, SLIRP's hostfwd and passt's command line. Pure.

import { test } from "node:test";
import assert from "node:assert/strict";
import { forwardsOf, passtForward, slirpHostfwd } from "../../host/net/forwards.js";
import { passtArgs } from "../../host/net/passt.js";
import { buildQemuArgs } from "../../host/qemu/args.js";
import { parseEnv, ConfigError } from "../../host/config/env.js";
import { makeConfig, makePlan } from "../helpers/make-config.js";
import { guestConfigFor, PASST_MTU } from "../../host/guest-config.js";
import { daemonConfig } from "../../shared/daemon-config.js";

const paths = { socket: "/run/dinv/passt.sock", pidFile: "/run/dinv/passt.pid", logFile: "/run/dinv/passt.log" };
const valueOf = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

test("forwards: the docker API first, then DINV_TCP_PORTS and DINV_UDP_PORTS, on the bind address", () => {
  const config = makeConfig({ dockerPort: 12375, tcpPorts: [8080], udpPorts: [5353], bindAddr: "127.0.0.2" });
  assert.deepEqual(forwardsOf(config).map(slirpHostfwd), ["hostfwd=tcp:127.0.0.2:12375-:2375", "hostfwd=tcp:127.0.0.2:8080-:8080", "hostfwd=udp:127.0.0.2:5353-:5353"]);
  assert.deepEqual(forwardsOf(config).flatMap(passtForward), ["-t", "127.0.0.2/12375:2375", "-t", "127.0.0.2/8080:8080", "-u", "127.0.0.2/5353:5353"]);
  // With TLS the API forward goes to 2376.
  assert.equal(slirpHostfwd(forwardsOf(makeConfig({ dockerPort: 2376, tls: { certDir: "/c" } }))[0]!), "hostfwd=tcp:127.0.0.1:2376-:2376");
});

test("passt keeps the guest's SLIRP addressing, serves one QEMU, runs as the launcher's user", () => {
  const args = passtArgs(paths, forwardsOf(makeConfig({ dockerPort: 2375 })), { uid: 1000, gid: 1000 });
  assert.deepEqual(valueOf(args, "--address"), ["10.0.2.15"]);
  assert.deepEqual(valueOf(args, "--netmask"), ["24"]);
  assert.deepEqual(valueOf(args, "--gateway"), ["10.0.2.2"]);
  assert.deepEqual(valueOf(args, "--dns-forward"), ["10.0.2.3"]);
  assert.deepEqual(valueOf(args, "--runas"), ["1000:1000"]);
  assert.deepEqual(valueOf(args, "--socket"), [paths.socket]);
  assert.deepEqual(valueOf(args, "-t"), ["127.0.0.1/2375:2375"]);
  for (const flag of ["--one-off", "--foreground", "--ipv4-only"]) assert.ok(args.includes(flag), flag);
});

test("QEMU: SLIRP hostfwd by default; with passt a stream netdev to its socket and no hostfwd", () => {
  const config = makeConfig({ tcpPorts: [8080] });
  const slirp = buildQemuArgs(config, makePlan());
  assert.match(valueOf(slirp, "-netdev")[0]!, /^user,id=net0,hostfwd=tcp:127\.0\.0\.1:2375-:2375,hostfwd=tcp:127\.0\.0\.1:8080-:8080$/);
  const passt = buildQemuArgs(config, makePlan({ net: { kind: "passt", socket: "/run/a,b/passt.sock" } }));
  assert.deepEqual(valueOf(passt, "-netdev"), ["stream,id=net0,server=off,addr.type=unix,addr.path=/run/a,,b/passt.sock"]);
  assert.ok(!passt.join(" ").includes("hostfwd"));
  assert.ok(valueOf(passt, "-device").includes("virtio-net-device,netdev=net0"));
});

test("DINV_NET: slirp by default, passt on request, anything else refused with the allowed values", () => {
  assert.equal(parseEnv({}, { guestDir: "/g" }).net, "slirp");
  assert.equal(parseEnv({ DINV_NET: "passt" }, { guestDir: "/g" }).net, "passt");
  assert.throws(() => parseEnv({ DINV_NET: "tap" }, { guestDir: "/g" }), (err: unknown) => err instanceof ConfigError && /DINV_NET.*"tap".*slirp or passt/s.test(err.message));
});

test("with passt the guest's eth0 and docker bridge take passt's 65520 MTU; a user's mtu wins; SLIRP sets none", () => {
  const passt = guestConfigFor(makeConfig(), undefined, "9p", "passt");
  assert.deepEqual(passt.net, { mtu: PASST_MTU });
  assert.equal(daemonConfig(passt.dockerd).mtu, 65520);
  const own = guestConfigFor(makeConfig({ daemonConfig: { mtu: 9000 } }), undefined, "9p", "passt");
  assert.equal(daemonConfig(own.dockerd).mtu, 9000);
  const slirp = guestConfigFor(makeConfig());
  assert.equal(slirp.net, undefined);
  assert.equal(daemonConfig(slirp.dockerd).mtu, undefined);
});
