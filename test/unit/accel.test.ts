import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseAccel, type KvmProbe } from "../../host/qemu/accel.js";

const usable: KvmProbe = { device: "ok", cpuVirtFlags: true };
const cases: [string, "auto" | "kvm" | "tcg", KvmProbe, string, RegExp?][] = [
  ["tcg asked", "tcg", usable, "tcg"],
  ["auto, usable KVM: kvm under a boot watchdog", "auto", usable, "kvm"],
  ["auto, no /dev/kvm", "auto", { device: "missing", cpuVirtFlags: true }, "tcg", /--device \/dev\/kvm/],
  ["auto, /dev/kvm not accessible", "auto", { device: "no-access", cpuVirtFlags: true }, "tcg", /permissions/],
  ["auto, /dev/kvm but no vmx/svm (this machine)", "auto", { device: "ok", cpuVirtFlags: false }, "tcg", /vmx\/svm/],
  ["kvm asked, missing", "kvm", { device: "missing", cpuVirtFlags: false }, "error", /DINV_ACCEL=kvm/],
  ["kvm asked, present", "kvm", { device: "ok", cpuVirtFlags: false }, "kvm"],
];

for (const [name, requested, probe, accel, message] of cases) {
  test(`chooseAccel: ${name}`, () => {
    const choice = chooseAccel(requested, probe);
    assert.equal(choice.accel, accel);
    if (choice.accel === "kvm") assert.equal(choice.verifyBoot, requested === "auto");
    if (message) {
      const text = choice.accel === "tcg" ? choice.warning : choice.accel === "error" ? choice.message : "";
      assert.match(text ?? "", message);
    }
  });
}
