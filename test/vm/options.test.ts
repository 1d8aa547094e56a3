// VM suite: every DinV option, end to end in one booted guest, then a second boot for what must
// survive a restart (volume data, a container's clean SIGTERM) and for disk growth.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { docker, fetchBody, importBusybox } from "../helpers/docker-cli.js";
import { DinvProcess, freePort } from "../helpers/dinv-process.js";

const IMAGE = "dinv-test/tools";

async function udpEcho(port: number, payload: string): Promise<string | undefined> {
  const socket = createSocket("udp4");
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      const reply = new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 1000);
        socket.once("message", (msg) => {
          clearTimeout(timer);
          resolve(msg.toString());
        });
      });
      socket.send(payload, port, "127.0.0.1");
      const got = await reply;
      if (got !== undefined) return got;
    }
    return undefined;
  } finally {
    socket.close();
  }
}

describe("DinV options end to end", () => {
  let dinv: DinvProcess;
  let host: string;
  const base = mkdtempSync(join(tmpdir(), "dinv-opts-"));
  const data = join(base, "data");
  const odd = join(base, "with space,comma");
  let tcpPort: number;
  let udpPort: number;

  before(async () => {
    mkdirSync(data);
    mkdirSync(odd);
    chmodSync(data, 0o777);
    writeFileSync(join(data, "hello.txt"), "Hello world\n");
    writeFileSync(join(odd, "odd.txt"), "odd path\n");
    tcpPort = await freePort();
    udpPort = await freePort();
    dinv = await DinvProcess.create({
      DINV_CPUS: "2",
      DINV_MEMORY: "1G",
      DINV_TCP_PORTS: ` ${tcpPort} `,
      DINV_UDP_PORTS: String(udpPort),
      DINV_MOUNTS: `${data};${odd}`,
      DINV_DOCKER_SIZE: "2G",
      DINV_VOLUME_PATH: "/cache",
      DINV_VOLUME_SIZE: "1G",
      DINV_VOLUME_UID: "1000",
      DINV_VOLUME_GID: "1000",
      DINV_DOCKER_SOCK_UID: "1000",
      DINV_DOCKER_SOCK_GID: "1000",
      DINV_SHUTDOWN_TIMEOUT: "5",
      DINV_INSECURE_REGISTRIES: "registry.test:5000",
      DINV_REGISTRY_MIRRORS: "http://127.0.0.1:5001",
      DINV_DOCKERD_CONFIG: '{"labels":["dinv-test=1"]}',
    });
    host = dinv.dockerHost;
    dinv.start();
    const state = await dinv.waitUntilSettled();
    assert.equal(state.phase, "ready", dinv.tail());
    importBusybox(host, IMAGE, ["/usr/bin/docker", "/usr/bin/socat"]);
  });

  after(async () => {
    await dinv?.kill();
  });

  const run = (...args: string[]) => docker(host, ["run", "--rm", ...args]);

  test("DINV_CPUS and DINV_MEMORY: the guest sees 2 CPUs and about 1 GiB", () => {
    assert.equal(run(IMAGE, "nproc").stdout.trim(), "2");
    const kib = Number(/MemTotal:\s+(\d+)/.exec(run(IMAGE, "cat", "/proc/meminfo").stdout)?.[1]);
    assert.ok(kib > 900 * 1024 && kib <= 1024 * 1024, `MemTotal ${kib} KiB`);
  });

  test("DINV_TCP_PORTS: a container publishing the port is reachable from the launcher side", async () => {
    const started = docker(host, ["run", "-d", "--name", "web", "-p", `${tcpPort}:80`, IMAGE, "sh", "-c", "mkdir /www && echo served-by-guest > /www/index.html && httpd -f -p 80 -h /www"]);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(await fetchBody(`http://127.0.0.1:${tcpPort}/`), "served-by-guest\n");
  });

  test("DINV_UDP_PORTS: a UDP echo round-trips through the guest", async () => {
    const started = docker(host, ["run", "-d", "-p", `${udpPort}:${udpPort}/udp`, IMAGE, "socat", `UDP4-RECVFROM:${udpPort},fork`, "PIPE"]);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(await udpEcho(udpPort, "ping-udp"), "ping-udp");
  });

  test("DINV_MOUNTS: auto picks 9p's mapped security model where virtiofsd cannot map the guest's root (QEMU's C daemon), says why; a container reads the launcher's file and writes one back", () => {
    const flavour = spawnSync("sh", ["-c", "for b in /usr/libexec/virtiofsd /usr/lib/qemu/virtiofsd /usr/lib/virtiofsd; do [ -x $b ] && $b --version 2>&1 && break; done"], { encoding: "utf8" }).stdout;
    const rust = /virtiofsd \d+\.\d+/.test(flavour) && !/QEMU|qemu/.test(flavour);
    const read = run("-v", `${data}:/data`, IMAGE, "sh", "-c", "grep ' /data ' /proc/mounts; cat /data/hello.txt");
    assert.match(read.stdout, rust ? /^dinv0 \/data virtiofs /m : /^dinv0 \/data 9p .*trans=virtio/m, read.stderr);
    assert.match(read.stdout, /^Hello world$/m);
    if (!rust) assert.ok(dinv.messages().some((m) => /^DINV_MOUNTS use 9p \(mapped security model\), not virtio-fs: .*C daemon/.test(m)), dinv.tail());
    const write = run("--user", "1234:1234", "-v", `${data}:${data}`, IMAGE, "sh", "-c", `echo from-guest > '${data}/out.txt' && stat -c %u:%g '${data}/out.txt'`);
    assert.equal(write.code, 0, write.stderr);
    assert.equal(write.stdout.trim(), "1234:1234", "the guest sees its own owner");
    assert.equal(readFileSync(join(data, "out.txt"), "utf8"), "from-guest\n");
  });

  test("DINV_MOUNTS by default: root in a container plants no device node and no setuid-root file on the launcher side", () => {
    const made = run("-v", `${data}:/data`, IMAGE, "sh", "-c", "mknod /data/blk b 8 0; mknod /data/chr c 1 3; cp /bin/busybox /data/suid && chown 0:0 /data/suid && chmod 4755 /data/suid; ls -l /data");
    assert.equal(made.code, 0, made.stderr);
    for (const name of ["blk", "chr"]) {
      const st = existsSync(join(data, name)) ? statSync(join(data, name)) : undefined;
      assert.ok(!st || st.isFile(), `${name}: no device node on the launcher side`);
    }
    const suid = statSync(join(data, "suid"));
    assert.ok(!(suid.uid === 0 && suid.mode & 0o4000), `suid: not a setuid-root file on the launcher side (uid ${suid.uid}, mode ${(suid.mode & 0o7777).toString(8)})`);
  });

  test("DINV_MOUNTS: a path with a space and a comma works", () => {
    const read = run("-v", `${odd}:/odd`, IMAGE, "cat", "/odd/odd.txt");
    assert.equal(read.stdout, "odd path\n", read.stderr);
  });

  test("DINV_VOLUME_*: the volume is mounted, owned by 1000:1000, writable by that uid", () => {
    const result = run("--user", "1000:1000", "-v", "/cache:/cache", IMAGE, "sh", "-c", "echo kept > /cache/data && stat -c %u:%g /cache");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "1000:1000");
  });

  test("DINV_DOCKER_SOCK_UID/GID: uid 1000 can use the bind-mounted socket, uid 2000 cannot", () => {
    const sock = "/var/run/docker.sock:/var/run/docker.sock";
    const allowed = run("--user", "1000:1000", "-v", sock, IMAGE, "/usr/bin/docker", "ps", "--format", "{{.Names}}");
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /^web$/m);
    const denied = run("--user", "2000:2000", "-v", sock, IMAGE, "/usr/bin/docker", "ps");
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /permission denied/);
  });

  test("dockerd configuration: insecure registries, mirrors and extra daemon.json keys reach dockerd", () => {
    const info = docker(host, ["info", "--format", "{{json .RegistryConfig.IndexConfigs}} {{json .RegistryConfig.Mirrors}} {{json .Labels}}"]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /"registry\.test:5000":\{[^}]*"Secure":false/);
    assert.match(info.stdout, /"http:\/\/127\.0\.0\.1:5001\/"/);
    assert.match(info.stdout, /"dinv-test=1"/);
  });

  test("user-defined networks come from 172.24.0.0/13, away from 172.17/16 and the 172.19/16 bridge", () => {
    assert.equal(docker(host, ["network", "create", "n1"]).code, 0);
    const subnet = docker(host, ["network", "inspect", "n1", "--format", "{{(index .IPAM.Config 0).Subnet}}"]).stdout.trim();
    assert.match(subnet, /^172\.(2[4-9]|3[01])\.\d+\.0\/24$/);
  });

  test("DINV_SHUTDOWN_TIMEOUT: a running container gets SIGTERM and the guest stops cleanly", async () => {
    const started = docker(host, ["run", "-d", "-v", "/cache:/cache", IMAGE, "sh", "-c", "trap 'echo term > /cache/term; exit 0' TERM; while true; do sleep 1; done"]);
    assert.equal(started.code, 0, started.stderr);
    const { code, ms } = await dinv.stop("SIGTERM");
    assert.equal(code, 0, dinv.tail());
    assert.ok(ms < 5_000 + 20_000, `stop took ${ms} ms`);
  });

  test("second boot: volume data and the container's SIGTERM mark survived; the docker disk grew; a smaller size only warns", async () => {
    dinv.env.DINV_DOCKER_SIZE = "3G";
    dinv.env.DINV_VOLUME_SIZE = "512M";
    dinv.start();
    const state = await dinv.waitUntilSettled();
    assert.equal(state.phase, "ready", dinv.tail());
    assert.ok(dinv.messages().some((m) => /^grew .*docker\.qcow2 from 2G to 3G$/.test(m)), "docker disk grown");
    assert.ok(dinv.logs.some((l) => l.level === 40 && /volume\.qcow2 at 1G: DINV_VOLUME_SIZE=512M is smaller, and dinv never shrinks a disk/.test(l.msg)));
    const disks = state.steps.find((s) => s.name === "disks")?.detail ?? "";
    assert.match(disks, /docker: mounted existing ext4.*grown to fill the disk/);
    assert.equal(run("-v", "/cache:/cache", IMAGE, "cat", "/cache/data", "/cache/term").stdout, "kept\nterm\n");
    const df = run("-v", "/var/lib/docker:/d", IMAGE, "df", "-k", "/d").stdout.trim().split("\n").at(-1)!.split(/\s+/);
    assert.ok(Number(df[1]) > 2.5 * 1024 * 1024, `filesystem size ${df[1]} KiB`);
    const { code } = await dinv.stop("SIGTERM");
    assert.equal(code, 0, dinv.tail());
  });
});
