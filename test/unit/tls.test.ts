// TLS material for DOCKER_TLS_CERTDIR: real openssl runs in a temporary directory (no VM).

import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureTlsMaterial, leafExtensions, serverSans } from "../../host/tls/certs.js";
import { guestConfigFor } from "../../host/guest-config.js";
import { daemonConfig } from "../../shared/daemon-config.js";
import { GuestConfigSchema } from "../../shared/protocol/guest-config.js";
import { makeConfig } from "../helpers/make-config.js";

test("server names: localhost, the hostname and IPv4 addresses, deduplicated; junk and 0.0.0.0 dropped", () => {
  assert.deepEqual(serverSans("dinv-1", ["0.0.0.0", "172.17.0.2", "127.0.0.1", "fe80::1"]), ["DNS:localhost", "DNS:dinv-1", "IP:127.0.0.1", "IP:172.17.0.2"]);
  assert.deepEqual(serverSans("bad name,DNS:evil", []), ["DNS:localhost", "IP:127.0.0.1"]);
});

test("leaf extensions: server and client usages are distinct; only the server carries names", () => {
  assert.match(leafExtensions("server", ["DNS:localhost"]), /extendedKeyUsage = serverAuth\n.*subjectAltName = DNS:localhost/s);
  assert.doesNotMatch(leafExtensions("client", ["DNS:localhost"]), /subjectAltName|serverAuth/);
});

test("generates a CA, a server and a client certificate as docker:dind lays them out, and reuses them", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "dinv-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const tls = await ensureTlsMaterial(dir, { sans: serverSans("dinv-test", ["10.1.2.3"]), clientOwner: owner });
  const ca = new X509Certificate(readFileSync(join(dir, "ca/cert.pem")));
  const server = new X509Certificate(tls.server.certPem);
  const client = new X509Certificate(tls.client.certPem);
  assert.ok(ca.ca, "the CA certificate is a CA");
  assert.ok(!server.ca && !client.ca);
  assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
  assert.ok(client.checkIssued(ca) && client.verify(ca.publicKey));
  assert.equal(server.checkHost("localhost"), "localhost");
  assert.equal(server.checkIP("127.0.0.1"), "127.0.0.1");
  assert.equal(server.checkIP("10.1.2.3"), "10.1.2.3");
  assert.equal(server.checkIP("10.9.9.9"), undefined);
  assert.ok(server.publicKey.equals(createPublicKey(createPrivateKey(tls.server.keyPem))));
  assert.equal(tls.clientDir, join(dir, "client"));
  for (const side of ["server", "client"]) assert.equal(readFileSync(join(dir, side, "ca.pem"), "utf8"), tls.caPem);
  assert.equal(statSync(join(dir, "ca/key.pem")).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, "server/key.pem")).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, "client/key.pem")).mode & 0o777, 0o640);

  // A second start keeps what is there (clients already hold these certificates).
  writeFileSync(join(dir, "marker"), "");
  const again = await ensureTlsMaterial(dir, { sans: serverSans("other", []), clientOwner: owner });
  assert.equal(again.server.certPem, tls.server.certPem);
  assert.equal(again.client.keyPem, tls.client.keyPem);

  // The guest receives the server side only, and the schema the guest parses with accepts it.
  const guest = GuestConfigSchema.parse(guestConfigFor(makeConfig({ tls: { certDir: dir }, dockerPort: 2376 }), tls));
  assert.equal(guest.dockerd.tcpPort, 2376);
  assert.equal(guest.dockerd.tls?.keyPem, tls.server.keyPem);
  assert.ok(!JSON.stringify(guest).includes(tls.client.keyPem), "the client key never goes to the guest");
  assert.ok(!JSON.stringify(guest).includes(readFileSync(join(dir, "ca/key.pem"), "utf8")), "the CA key never goes to the guest");
});

test("daemon.json with TLS: tlsverify on the TCP socket, files from the RAM-backed /etc", () => {
  const tls = { caPem: "c", certPem: "s", keyPem: "k" };
  const config = daemonConfig({ bip: "172.19.0.1/16", tcpPort: 2376, shutdownTimeoutSeconds: 5, sockUid: 0, sockGid: 0, daemonConfig: {}, tls });
  assert.deepEqual(config.hosts, ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]);
  assert.equal(config.tls, true);
  assert.equal(config.tlsverify, true);
  assert.equal(config.tlscacert, "/etc/docker/tls/ca.pem");
  const plain = daemonConfig({ bip: "172.19.0.1/16", tcpPort: 2375, shutdownTimeoutSeconds: 5, sockUid: 0, sockGid: 0, daemonConfig: {} });
  assert.equal(plain.tls, false);
  assert.equal(plain.tlsverify, undefined);
});

test("the guest refuses TLS material that is not PEM", () => {
  const base = guestConfigFor(makeConfig());
  const bad = { ...base, dockerd: { ...base.dockerd, tls: { caPem: "x", certPem: "y", keyPem: "z" } } };
  assert.equal(GuestConfigSchema.safeParse(bad).success, false);
});

test("DOCKER_TLS_CERTDIR/client shared with a job: planted symlinks and FIFOs change no file outside it and hang nothing", async (t) => {
  const base = mkdtempSync(join(tmpdir(), "dinv-tls-planted-"));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dir = join(base, "certs");
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  await ensureTlsMaterial(dir, { sans: serverSans("dinv", []), clientOwner: owner });
  // What a job container that mounts client/ read-write can do before the next start.
  const victim = join(base, "docker.qcow2");
  writeFileSync(victim, "the docker disk\n");
  for (const name of ["ca.pem", "key.pem", "cert.pem"]) {
    rmSync(join(dir, "client", name));
    symlinkSync(victim, join(dir, "client", name));
  }
  const again = await Promise.race([
    ensureTlsMaterial(dir, { sans: serverSans("dinv", []), clientOwner: owner }).then(() => "done", (e: Error) => e.message),
    new Promise((r) => setTimeout(() => r("hung"), 20_000).unref()),
  ]);
  assert.match(String(again), /client\/(ca|key|cert)\.pem: a symbolic link/, "refused, naming the path");
  assert.equal(readFileSync(victim, "utf8"), "the docker disk\n", "the file behind the links is unchanged");
  assert.equal(statSync(victim).mode & 0o777, 0o644, "its mode too");
  // A FIFO where a certificate should be is refused at once, naming the path.
  rmSync(join(dir, "client"), { recursive: true });
  mkdirSync(join(dir, "client"));
  execFileSync("mkfifo", [join(dir, "client", "cert.pem")]);
  await assert.rejects(ensureTlsMaterial(dir, { sans: serverSans("dinv", []), clientOwner: owner }), (err: Error) => err.message.includes(join(dir, "client", "cert.pem")) && /regular file|FIFO/.test(err.message));
  // The directory itself replaced by a link: refused, nothing written there.
  rmSync(join(dir, "client"), { recursive: true });
  mkdirSync(join(base, "elsewhere"));
  symlinkSync(join(base, "elsewhere"), join(dir, "client"));
  await assert.rejects(ensureTlsMaterial(dir, { sans: serverSans("dinv", []), clientOwner: owner }), /client.*symbolic link/);
  assert.deepEqual(readdirSync(join(base, "elsewhere")), []);
});
