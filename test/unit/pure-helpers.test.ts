import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSize, formatSize } from "../../host/config/size.js";
import { parsePortList, parsePathList } from "../../host/config/lists.js";
import { planDisk } from "../../host/disk/images.js";
import { interpretBlkid } from "../../guest/system/disk.js";
import { devicesAt, unmountOrder } from "../../guest/system/mounts.js";
import { daemonConfig } from "../../shared/daemon-config.js";
import { parsePrepResult } from "../../guest/system/linux.js";
import { tscKhzFromCpuinfo } from "../../host/preflight.js";
import { bootTimeline, describeStopTimeline, stopTimelineOf } from "../../host/guest-link/timeline.js";
import { RateLimiter } from "../../host/guest-link/rate-limit.js";

test("sizes in QEMU syntax", () => {
  assert.equal(parseSize("512M"), 512 * 2 ** 20);
  assert.equal(parseSize("64G"), 64 * 2 ** 30);
  assert.equal(parseSize("2gib"), 2 * 2 ** 30);
  assert.equal(parseSize("100"), 100);
  assert.equal(parseSize("100", "M"), 100 * 2 ** 20);
  assert.equal(parseSize("1.5G"), undefined);
  assert.equal(parseSize("G"), undefined);
  assert.equal(formatSize(512 * 2 ** 20), "512M");
  assert.equal(formatSize(1536 * 2 ** 20), "1536M");
  assert.equal(formatSize(2 ** 40), "1T");
});

test("port and path lists", () => {
  assert.deepEqual(parsePortList(""), { ok: true, value: [] });
  assert.deepEqual(parsePortList("1;65535"), { ok: true, value: [1, 65535] });
  assert.equal(parsePortList("8000-8010;8005").ok, false);
  assert.equal(parsePortList("1-70000").ok, false);
  assert.deepEqual(parsePathList("/a/./b/;/c"), { ok: true, value: ["/a/b", "/c"] });
  assert.equal(parsePathList("/a;/a/").ok, false);
});

test("disk plan: create, keep, grow, never shrink, never touch a non-qcow2 file", () => {
  assert.deepEqual(planDisk(undefined, 10), { action: "create", sizeBytes: 10 });
  assert.deepEqual(planDisk({ format: "qcow2", "virtual-size": 10 }, 10), { action: "keep" });
  assert.deepEqual(planDisk({ format: "qcow2", "virtual-size": 10 }, 20), { action: "grow", fromBytes: 10, toBytes: 20 });
  assert.deepEqual(planDisk({ format: "qcow2", "virtual-size": 20 }, 10), { action: "keep-larger", currentBytes: 20, askedBytes: 10 });
  assert.equal(planDisk({ format: "raw", "virtual-size": 20 }, 20).action, "refuse");
});

test("blkid: blank only when nothing at all is found", () => {
  assert.deepEqual(interpretBlkid(2, ""), { kind: "blank" });
  assert.deepEqual(interpretBlkid(0, "DEVNAME=/dev/vdb\nLABEL=dinv-docker\nTYPE=ext4\n"), { kind: "filesystem", type: "ext4", label: "dinv-docker" });
  assert.deepEqual(interpretBlkid(0, "DEVNAME=/dev/vdb\nTYPE=xfs\n"), { kind: "filesystem", type: "xfs" });
  assert.equal(interpretBlkid(0, "PTTYPE=gpt\n").kind, "other");
  // An error probing (exit 4, 8) is never "blank".
  assert.equal(interpretBlkid(4, "").kind, "other");
});

test("unmount order: deepest first, only under the given roots", () => {
  const mounts = [
    "/dev/vdb /var/lib/docker ext4 rw 0 0",
    "overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0",
    "dinv0 /srv/a\\040b 9p rw 0 0",
    "proc /proc proc rw 0 0",
    "/dev/vdc /var/lib/dockerx ext4 rw 0 0",
  ].join("\n");
  assert.deepEqual(unmountOrder(mounts, ["/var/lib/docker", "/srv/a b"]), ["/var/lib/docker/overlay2/abc/merged", "/var/lib/docker", "/srv/a b"]);
});

test("daemon.json: user keys merge under dinv's own", () => {
  const config = daemonConfig({ bip: "172.19.0.1/16", tcpPort: 2375, shutdownTimeoutSeconds: 7, sockUid: 0, sockGid: 0, daemonConfig: { "registry-mirrors": ["http://m"], bip: "1.2.3.4/8" } });
  assert.deepEqual(config["registry-mirrors"], ["http://m"]);
  assert.equal(config.bip, "172.19.0.1/16");
  assert.equal(config.tls, false);
  assert.equal(config["shutdown-timeout"], 7);
  assert.deepEqual(config.hosts, ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]);
});

test("prep result and cpuinfo parsing", () => {
  assert.deepEqual(parsePrepResult("0 4.52\n", "3.31\n"), { exitCode: 0, detail: "modules, cgroups and network up", startedMs: 3310, endedMs: 4520 });
  assert.equal(parsePrepResult("1 9", "").exitCode, 1);
  assert.equal(tscKhzFromCpuinfo("model name\t: x\ncpu MHz\t\t: 2445.432\n"), 2445432);
  assert.equal(tscKhzFromCpuinfo("no such line"), undefined);
});

test("boot timeline maps guest uptime onto the launcher clock", () => {
  const hello = { type: "hello" as const, protocolVersion: 1, bootId: "b", agentVersion: "x", uptimeMs: 9000, initStartedMs: 3000 };
  const status = {
    type: "status" as const, seq: 9, at: 0, uptimeMs: 30000, bootId: "b", state: { phase: "ready" as const },
    steps: [
      { name: "disks" as const, state: "ok" as const, startedMs: 9100, endedMs: 11000 },
      { name: "dockerd" as const, state: "ok" as const, startedMs: 11000, endedMs: 11500 },
      { name: "ping" as const, state: "ok" as const, startedMs: 11500, endedMs: 30000 },
    ],
  };
  // QEMU at t=1000, hello at t=11000 with uptime 9000: kernel started at t=2000, 1000 ms after QEMU.
  assert.deepEqual(bootTimeline(1000, 11000, hello, status), { kernel: 1000, init: 4000, hello: 10000, disksMounted: 12000, dockerdStarted: 12500, ready: 31000 });
});

test("rate limiter: burst, then refill, counting what it dropped", () => {
  let now = 0;
  const limiter = new RateLimiter(1, 2, () => now);
  assert.equal(limiter.take().allowed, true);
  assert.equal(limiter.take().allowed, true);
  assert.equal(limiter.take().allowed, false);
  assert.equal(limiter.take().allowed, false);
  now = 1000;
  assert.deepEqual(limiter.take(), { allowed: true, suppressed: 2 });
});

test("devicesAt: the block device under each disk mount point, never a virtual filesystem's", () => {
  const info = [
    "37 31 254:16 / /var/lib/docker rw,noatime shared:1 - ext4 /dev/vdb rw",
    "38 31 254:32 / /cache rw,noatime - ext4 /dev/vdc rw",
    "42 37 0:33 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw",
    "50 31 0:40 / /data rw - virtiofs dinv0 rw",
    "51 31 254:48 / /srv/a\\040b rw - ext4 /dev/vdd rw",
  ].join("\n");
  assert.deepEqual([...devicesAt(info, ["/var/lib/docker", "/cache", "/data", "/srv/a b"]).entries()], [["/var/lib/docker", "254:16"], ["/cache", "254:32"], ["/srv/a b", "254:48"]]);
});

test("the boot timeline picture: one bar a row, segments in order and to scale, the hello marked", async () => {
  const { timelineSvg } = await import("../../bench/timeline-svg.js");
  const svg = timelineSvg([{ label: "cold", phases: { kernel: 700, init: 2700, hello: 6000, disksMounted: 5500, dockerdStarted: 6300, ready: 13000 } }], "caption & more");
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.includes("caption &amp; more"));
  const widths = [...svg.matchAll(/<rect x="[\d.]+" y="40" width="([\d.]+)"[^>]*><title>([^:]+): (\d+) ms/g)].map((m) => ({ w: Number(m[1]), name: m[2], ms: Number(m[3]) }));
  assert.deepEqual(widths.map((w) => w.ms), [700, 2000, 2800, 800, 6700]);
  // Widths proportional to durations.
  const perMs = widths[4]!.w / widths[4]!.ms;
  for (const w of widths) assert.ok(Math.abs(w.w - w.ms * perMs) < 1, w.name);
  assert.match(svg, /agent hello/);
});

test("the stop timeline: ms from the request to each phase the run saw; none without a request", () => {
  assert.equal(stopTimelineOf(undefined, {}, 5000), undefined);
  const t = stopTimelineOf(1000, { stopping: 1030, stopped: 8900 }, 9000)!;
  assert.deepEqual(t, { guestStopping: 30, guestStopped: 7900, qemuExited: 8000 });
  assert.equal(describeStopTimeline(t), "the guest took the request after 0.0 s, stopped after 7.9 s, QEMU exited after 8.0 s");
  // A guest that never said it stopped (QEMU had to be ended): only what was seen.
  assert.deepEqual(stopTimelineOf(1000, {}, 2500), { qemuExited: 1500 });
});
