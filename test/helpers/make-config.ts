// A valid launcher configuration with overrides, for table tests of the pure core.

import { parseEnv, type HostConfig } from "../../host/config/env.js";
import type { QemuPlan } from "../../host/qemu/args.js";
import { qemuFeatures } from "../../host/qemu/version.js";

export function makeConfig(overrides: Partial<HostConfig> = {}): HostConfig {
  return { ...parseEnv({}, { guestDir: "/guest" }), ...overrides };
}

export function makePlan(overrides: Partial<QemuPlan> = {}): QemuPlan {
  return {
    accel: "tcg",
    qemu: qemuFeatures("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)"),
    kernel: "/guest/vmlinux",
    initrd: "/guest/initramfs.cpio",
    rootImage: "/guest/rootfs.img",
    dockerDisk: "/docker/docker.qcow2",
    agentSocket: "/run/dinv/agent.sock",
    qmpSocket: "/run/dinv/qmp.sock",
    pidFile: "/run/dinv/qemu.pid",
    shares: [],
    ...overrides,
  };
}
