// Choosing the accelerator. Probing is separate (probeKvm) and its result is passed in, so the
// choice itself is pure and table-tested.

import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";

export interface KvmProbe {
  /** whether /dev/kvm exists and opens read-write */
  device: "ok" | "missing" | "no-access";
  /** whether the CPU advertises vmx or svm (absent under most nested setups that stall) */
  cpuVirtFlags: boolean;
}

export type AccelChoice =
  | { accel: "kvm"; /** boot under a watchdog and fall back to TCG if the guest stalls */ verifyBoot: boolean }
  | { accel: "tcg"; /** loud explanation when TCG was not asked for */ warning?: string }
  | { accel: "error"; message: string };

export function chooseAccel(requested: "auto" | "kvm" | "tcg", probe: KvmProbe): AccelChoice {
  if (requested === "tcg") return { accel: "tcg" };
  if (requested === "kvm") {
    if (probe.device !== "ok") {
      return { accel: "error", message: `DINV_ACCEL=kvm but /dev/kvm is ${probe.device === "missing" ? "missing" : "not accessible"}: pass --device /dev/kvm, or set DINV_ACCEL=auto` };
    }
    return { accel: "kvm", verifyBoot: false };
  }
  if (probe.device === "missing") {
    return { accel: "tcg", warning: "no /dev/kvm: running under TCG (software emulation), expect it to be 5-10x slower; pass --device /dev/kvm" };
  }
  if (probe.device === "no-access") {
    return { accel: "tcg", warning: "/dev/kvm cannot be opened read-write: running under TCG, expect it to be slow; check the device's permissions" };
  }
  if (!probe.cpuVirtFlags) {
    return { accel: "tcg", warning: "/dev/kvm is present but the CPU shows no vmx/svm flag (nested virtualisation without it stalls guests): running under TCG, expect it to be slow" };
  }
  return { accel: "kvm", verifyBoot: true };
}

export async function probeKvm(): Promise<KvmProbe> {
  let device: KvmProbe["device"] = "ok";
  try {
    await access("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch (err) {
    device = (err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "no-access";
  }
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const cpuVirtFlags = /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
  return { device, cpuVirtFlags };
}
