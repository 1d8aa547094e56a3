import { test } from "node:test";
import assert from "node:assert/strict";
import { balloonFits, buildQemuArgs, PlanError, qemuEscape } from "../../host/qemu/args.js";
import { makeConfig, makePlan } from "../helpers/make-config.js";

/** The value following each occurrence of a flag. */
const values = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

const cases = [
  { name: "microvm tcg", config: {}, plan: {}, expect: { machine: /^microvm,/, accel: /^tcg,tb-size=256$/, cpu: "max", blk: "virtio-blk-device" } },
  { name: "microvm kvm", config: {}, plan: { accel: "kvm" as const }, expect: { machine: /^microvm,/, accel: /^kvm$/, cpu: "host", blk: "virtio-blk-device" } },
  { name: "q35 tcg", config: { machine: "q35" as const }, plan: {}, expect: { machine: /^q35$/, accel: /^tcg/, cpu: "max", blk: "virtio-blk-pci" } },
  { name: "q35 kvm", config: { machine: "q35" as const }, plan: { accel: "kvm" as const }, expect: { machine: /^q35$/, accel: /^kvm$/, cpu: "host", blk: "virtio-blk-pci" } },
];

for (const c of cases) {
  test(`buildQemuArgs: ${c.name}`, () => {
    const args = buildQemuArgs(makeConfig(c.config), makePlan(c.plan));
    assert.match(values(args, "-M")[0]!, c.expect.machine);
    assert.match(values(args, "-accel")[0]!, c.expect.accel);
    assert.equal(values(args, "-cpu")[0], c.expect.cpu);
    const devices = values(args, "-device");
    assert.ok(devices.some((d) => d.startsWith(`${c.expect.blk},drive=root,serial=dinv-root`)), devices.join(" "));
    assert.ok(devices.some((d) => d.startsWith(`${c.expect.blk},drive=docker,serial=dinv-docker`)));
    assert.ok(values(args, "-drive").some((d) => d.includes("id=root") && d.includes("readonly=on")), "root image must be read-only");
    assert.ok(args.includes("-no-reboot"));
    assert.ok(devices.includes("virtserialport,chardev=agent,name=dinv.agent"));
  });
}

test("the TSC frequency and its reliability are told to TCG guests only, and pci=off only to microvm", () => {
  const tcg = values(buildQemuArgs(makeConfig(), makePlan({ tscKhz: 2445432 })), "-append")[0]!;
  assert.match(tcg, /tsc_early_khz=2445432/);
  assert.match(tcg, /(^| )tsc=reliable( |$)/);
  assert.match(tcg, /pci=off/);
  const kvm = values(buildQemuArgs(makeConfig(), makePlan({ accel: "kvm", tscKhz: 2445432 })), "-append")[0]!;
  assert.doesNotMatch(kvm, /tsc_early_khz|tsc=reliable/);
  const twoCpus = values(buildQemuArgs(makeConfig({ cpus: 2 }), makePlan({ tscKhz: 2445432 })), "-append")[0]!;
  assert.doesNotMatch(twoCpus, /tsc=reliable/, "with several vCPUs the kernel keeps its clocksource watchdog");
  const q35 = values(buildQemuArgs(makeConfig({ machine: "q35" }), makePlan()), "-append")[0]!;
  assert.doesNotMatch(q35, /pci=off/);
});

const aslrCases = [
  { setting: "auto", accel: "tcg", norandmaps: true },
  { setting: "auto", accel: "kvm", norandmaps: false },
  { setting: "on", accel: "tcg", norandmaps: false },
  { setting: "on", accel: "kvm", norandmaps: false },
  { setting: "off", accel: "tcg", norandmaps: true },
  { setting: "off", accel: "kvm", norandmaps: true },
] as const;

for (const c of aslrCases) {
  test(`DINV_GUEST_ASLR=${c.setting} under ${c.accel}: norandmaps ${c.norandmaps ? "on" : "off"} the kernel command line`, () => {
    const append = values(buildQemuArgs(makeConfig({ guestAslr: c.setting }), makePlan({ accel: c.accel })), "-append")[0]!;
    assert.equal(append.split(" ").includes("norandmaps"), c.norandmaps, append);
  });
}

test("cpus and memory reach QEMU in its syntax", () => {
  const args = buildQemuArgs(makeConfig({ cpus: 2, memoryBytes: 2 * 2 ** 30 }), makePlan());
  assert.equal(values(args, "-smp")[0], "2");
  assert.equal(values(args, "-m")[0], "2G");
});

test("forwards: docker API on the bind address, then TCP and UDP ports", () => {
  const args = buildQemuArgs(makeConfig({ tcpPorts: [8080], udpPorts: [53], bindAddr: "0.0.0.0", dockerPort: 12375 }), makePlan());
  assert.equal(values(args, "-netdev")[0], "user,id=net0,hostfwd=tcp:0.0.0.0:12375-:2375,hostfwd=tcp:0.0.0.0:8080-:8080,hostfwd=udp:0.0.0.0:53-:53");
});

test("with DOCKER_TLS_CERTDIR the docker API forward reaches the guest's TLS port 2376, and 2375 is not forwarded", () => {
  const args = buildQemuArgs(makeConfig({ tls: { certDir: "/certs" }, dockerPort: 2376 }), makePlan());
  assert.equal(values(args, "-netdev")[0], "user,id=net0,hostfwd=tcp:127.0.0.1:2376-:2376");
});

test("paths with commas are escaped for QEMU", () => {
  assert.equal(qemuEscape("/a,b,,c"), "/a,,b,,,,c");
  const args = buildQemuArgs(makeConfig(), makePlan({ dockerDisk: "/d,x/docker.qcow2", shares: [{ tag: "dinv0", path: "/srv/a,b c" }] }));
  const docker = JSON.parse(values(args, "-blockdev").find((d) => d.includes('"node-name":"docker"'))!) as { file: { filename: string } };
  assert.equal(docker.file.filename, "/d,x/docker.qcow2", "a -blockdev's JSON needs no escaping");
  assert.ok(values(args, "-fsdev").some((d) => d.includes("path=/srv/a,,b c,")));
});

test("volume disk attached by serial when configured", () => {
  const args = buildQemuArgs(makeConfig(), makePlan({ volumeDisk: "/volume/volume.qcow2" }));
  assert.ok(values(args, "-device").some((d) => d === "virtio-blk-device,drive=volume,serial=dinv-volume,werror=enospc,rerror=report"));
});

test("the writable disks are -blockdev nodes with backing: null: QEMU follows no backing file a header names", () => {
  const args = buildQemuArgs(makeConfig(), makePlan({ volumeDisk: "/volume/volume.qcow2" }));
  const nodes = values(args, "-blockdev").map((d) => JSON.parse(d) as Record<string, unknown>);
  assert.deepEqual(nodes.map((n) => [n["node-name"], n.driver, n.backing]), [["docker", "qcow2", null], ["volume", "qcow2", null]]);
  assert.ok(!values(args, "-drive").some((d) => d.includes("qcow2")), "no qcow2 through -drive");
});

test("microvm refuses more shares than virtio-mmio slots, q35 takes them", () => {
  const shares = Array.from({ length: 5 }, (_, i) => ({ tag: `dinv${i}`, path: `/m${i}` }));
  assert.throws(() => buildQemuArgs(makeConfig(), makePlan({ shares })), (e: unknown) => e instanceof PlanError && /DINV_MACHINE=q35/.test(e.message));
  assert.doesNotThrow(() => buildQemuArgs(makeConfig(), makePlan({ shares: shares.slice(0, 4) })));
  assert.throws(() => buildQemuArgs(makeConfig(), makePlan({ shares: shares.slice(0, 4), volumeDisk: "/v" })), PlanError);
  const q35 = buildQemuArgs(makeConfig({ machine: "q35" }), makePlan({ shares }));
  assert.equal(values(q35, "-fsdev").length, 5);
});

test("free page reporting: a balloon device on q35 always, on microvm while a virtio-mmio slot is left", () => {
  const shares = (n: number) => Array.from({ length: n }, (_, i) => ({ tag: `dinv${i}`, path: `/s${i}` }));
  const balloons = (machine: "microvm" | "q35", plan: Partial<Parameters<typeof makePlan>[0]>) =>
    buildQemuArgs(makeConfig({ machine }), makePlan(plan)).filter((a) => a.includes("balloon"));
  assert.deepEqual(balloons("microvm", {}), ["virtio-balloon-device,free-page-reporting=on"]);
  assert.deepEqual(balloons("q35", { shares: shares(6) }), ["virtio-balloon-pci,free-page-reporting=on"]);
  assert.deepEqual(balloons("microvm", { shares: shares(3) }), ["virtio-balloon-device,free-page-reporting=on"]);
  // Four shares fill microvm's eight slots (root, docker, serial, net): the shares win, no balloon.
  assert.deepEqual(balloons("microvm", { shares: shares(4) }), []);
  assert.deepEqual(balloons("microvm", { shares: shares(3), volumeDisk: "/v.qcow2" }), []);
  assert.equal(balloonFits({ machine: "microvm" }, { shares: shares(2), volumeDisk: "/v.qcow2" }), true);
});
