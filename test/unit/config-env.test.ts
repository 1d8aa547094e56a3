import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseEnv } from "../../host/config/env.js";
import { BAD_VALUES as bad } from "../helpers/bad-config.js";

const parse = (env: Record<string, string>) => parseEnv(env, { guestDir: "/guest" });

test("defaults are the original DinV's", () => {
  const c = parse({});
  assert.equal(c.cpus, 1);
  assert.equal(c.memoryBytes, 512 * 2 ** 20);
  assert.deepEqual(c.tcpPorts, []);
  assert.deepEqual(c.udpPorts, []);
  assert.deepEqual(c.mounts, []);
  assert.equal(c.dockerSizeBytes, 64 * 2 ** 30);
  assert.equal(c.volume, undefined);
  assert.deepEqual(c.dockerSock, { uid: 0, gid: 0 });
  assert.equal(c.shutdownTimeoutSeconds, 5);
  assert.equal(c.machine, "microvm");
  assert.equal(c.accel, "auto");
  assert.equal(c.dockerDir, "/docker");
  assert.equal(c.volumeDir, "/volume");
  assert.equal(c.runDir, "/run/dinv");
  assert.equal(c.dockerPort, 2375);
  assert.equal(c.bindAddr, "127.0.0.1");
  assert.equal(c.bip, "172.19.0.1/16");
  assert.equal(c.guestDir, "/guest");
});

const good: [Record<string, string>, (c: ReturnType<typeof parse>) => unknown, unknown][] = [
  [{ DINV_CPUS: "2" }, (c) => c.cpus, 2],
  [{ DINV_MEMORY: "2G" }, (c) => c.memoryBytes, 2 * 2 ** 30],
  [{ DINV_MEMORY: "1024" }, (c) => c.memoryBytes, 2 ** 30],
  [{ DINV_MEMORY: "768m" }, (c) => c.memoryBytes, 768 * 2 ** 20],
  [{ DINV_TCP_PORTS: " 8080 ; 8443;" }, (c) => c.tcpPorts, [8080, 8443]],
  [{ DINV_TCP_PORTS: "8000-8002" }, (c) => c.tcpPorts, [8000, 8001, 8002]],
  [{ DINV_UDP_PORTS: "53" }, (c) => c.udpPorts, [53]],
  [{ DINV_MOUNTS: "/data;/srv/a b,c/" }, (c) => c.mounts, ["/data", "/srv/a b,c"]],
  [{ DINV_DOCKER_SIZE: "10G" }, (c) => c.dockerSizeBytes, 10 * 2 ** 30],
  [{ DINV_VOLUME_PATH: "/cache", DINV_VOLUME_SIZE: "1G", DINV_VOLUME_UID: "1000", DINV_VOLUME_GID: "100" }, (c) => c.volume, { path: "/cache", sizeBytes: 2 ** 30, uid: 1000, gid: 100 }],
  [{ DINV_DOCKER_SOCK_UID: "1000", DINV_DOCKER_SOCK_GID: "999" }, (c) => c.dockerSock, { uid: 1000, gid: 999 }],
  [{ DINV_SHUTDOWN_TIMEOUT: "0" }, (c) => c.shutdownTimeoutSeconds, 0],
  [{ DINV_MACHINE: "q35" }, (c) => c.machine, "q35"],
  [{ DINV_ACCEL: "tcg" }, (c) => c.accel, "tcg"],
  [{}, (c) => c.guestAslr, "auto"],
  [{ DINV_GUEST_ASLR: "on" }, (c) => c.guestAslr, "on"],
  [{ DINV_CPUS: "" }, (c) => c.cpus, 1],
  [{ DINV_BIND_ADDR: "0.0.0.0" }, (c) => c.bindAddr, "0.0.0.0"],
  [{ DINV_BIP: "10.200.0.1/24" }, (c) => c.bip, "10.200.0.1/24"],
  [{ DINV_DOCKERD_CONFIG: '{"log-level":"warn","features":{"buildkit":true}}' }, (c) => c.daemonConfig, { "log-level": "warn", features: { buildkit: true } }],
  [{ DINV_REGISTRY_MIRRORS: "http://127.0.0.1:5000; https://mirror.example/v2" }, (c) => c.daemonConfig["registry-mirrors"], ["http://127.0.0.1:5000", "https://mirror.example/v2"]],
  [{ DINV_INSECURE_REGISTRIES: "registry.local:5000;10.0.0.0/8" }, (c) => c.daemonConfig["insecure-registries"], ["registry.local:5000", "10.0.0.0/8"]],
  [{}, (c) => c.tls, undefined],
  [{ DOCKER_TLS_CERTDIR: "" }, (c) => [c.tls, c.dockerPort], [undefined, 2375]],
  [{ DOCKER_TLS_CERTDIR: "/certs/" }, (c) => [c.tls, c.dockerPort], [{ certDir: "/certs" }, 2376]],
  [{ DOCKER_TLS_CERTDIR: "/certs", DINV_DOCKER_PORT: "12376" }, (c) => c.dockerPort, 12376],
];

for (const [env, pick, expected] of good) {
  test(`accepts ${JSON.stringify(env)}`, () => assert.deepEqual(pick(parse(env)), expected));
}

test("the TLS port is kept free of other forwards", () => {
  assert.throws(() => parse({ DOCKER_TLS_CERTDIR: "/certs", DINV_TCP_PORTS: "2376" }), /DINV_TCP_PORTS="2376": port 2376 is taken by the docker API forward/);
  assert.equal(parse({ DINV_TCP_PORTS: "2376" }).tcpPorts[0], 2376);
});

for (const [name, value] of bad) {
  test(`rejects ${name}=${JSON.stringify(value)} naming the variable, the value and what is allowed`, () => {
    assert.throws(
      () => parse({ [name]: value }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const line = err.problems.find((p) => p.startsWith(`${name}=`));
        assert.ok(line, `no problem names ${name}: ${err.message}`);
        assert.ok(line.includes(JSON.stringify(value)), line);
        assert.match(line, /Allowed: /);
        return true;
      },
    );
  });
}

test("the guest dockerd's own port is not forwarded a second time; the run directory is never / or the guest's", () => {
  assert.throws(() => parse({ DINV_DOCKER_PORT: "2400", DINV_TCP_PORTS: "2375" }), /DINV_TCP_PORTS="2375": port 2375 is the guest dockerd's own API port; it is forwarded only as DINV_DOCKER_PORT \(2400\)/);
  assert.throws(() => parse({ DOCKER_TLS_CERTDIR: "/certs", DINV_DOCKER_PORT: "2400", DINV_TCP_PORTS: "2376" }), /port 2376 is the guest dockerd's own API port/);
  assert.equal(parse({ DOCKER_TLS_CERTDIR: "/certs", DINV_TCP_PORTS: "2375" }).tcpPorts[0], 2375, "with TLS the guest's dockerd does not listen on 2375");
  assert.throws(() => parseEnv({ DINV_RUN_DIR: "/guest" }, { guestDir: "/guest" }), /DINV_RUN_DIR="\/guest": overlaps DINV_GUEST_DIR/);
  assert.throws(() => parseEnv({ DINV_RUN_DIR: "/" }, { guestDir: "/guest" }), /DINV_RUN_DIR="\/": may not be \//);
});

test("every bad variable is reported at once", () => {
  assert.throws(() => parse({ DINV_CPUS: "x", DINV_MACHINE: "pc" }), (err: unknown) => err instanceof ConfigError && err.problems.length === 2);
});

test("a share may not overlap what the launcher keeps: its run directory, disks, TLS files or guest", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ DINV_MOUNTS: "/run/dinv" }, /DINV_MOUNTS="\/run\/dinv": "\/run\/dinv" overlaps DINV_RUN_DIR/],
    [{ DINV_MOUNTS: "/srv", DINV_DOCKER_DIR: "/srv/dinv/docker" }, /overlaps DINV_DOCKER_DIR \(\/srv\/dinv\/docker\)/],
    [{ DINV_MOUNTS: "/certs/client", DOCKER_TLS_CERTDIR: "/certs" }, /overlaps DOCKER_TLS_CERTDIR/],
    [{ DINV_MOUNTS: "/guest" }, /overlaps DINV_GUEST_DIR/],
    [{ DINV_VOLUME_PATH: "/var" }, /DINV_VOLUME_PATH="\/var": overlaps docker's data root/],
  ];
  for (const [env, message] of cases) assert.throws(() => parseEnv(env, { guestDir: "/guest" }), (e: Error) => message.test(e.message), JSON.stringify(env));
  assert.deepEqual(parseEnv({ DINV_MOUNTS: "/srv/app", DINV_DOCKER_DIR: "/srv/dinv" }, { guestDir: "/guest" }).mounts, ["/srv/app"], "siblings are fine");
});
