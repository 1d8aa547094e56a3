// A valid launcher configuration with overrides, for table tests of the pure core.

import { parseEnv, type HostConfig } from "../../host/config/env.js";
import type { QemuPlan } from "../../host/qemu/args.js";

export function makeConfig(overrides: Partial<HostConfig> = {}): HostConfig {
  return { ...parseEnv({}, { guestDir: "/guest" }), ...overrides };
}

export function makePlan(overrides: Partial<QemuPlan> = {}): QemuPlan {
  return {
    accel: "tcg",
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
