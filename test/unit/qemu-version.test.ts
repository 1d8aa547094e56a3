// The QEMU versions dinv runs on (Debian 12's 7.2 on development machines, Debian 13's 10.0 in the
// image): what each needs on the command line, as one pure decision.

import { test } from "node:test";
import assert from "node:assert/strict";
import { qemuFeatures, QemuVersionError } from "../../host/qemu/version.js";
import { buildQemuArgs } from "../../host/qemu/args.js";
import { makeConfig, makePlan } from "../helpers/make-config.js";

const cases = [
  { text: "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)", noOptionRoms: true, reconnect: "reconnect=1", fileMigration: false },
  { text: "QEMU emulator version 8.1.5", noOptionRoms: false, reconnect: "reconnect=1", fileMigration: false },
  { text: "QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)", noOptionRoms: false, reconnect: "reconnect=1", fileMigration: true },
  { text: "QEMU emulator version 9.2.0", noOptionRoms: false, reconnect: "reconnect-ms=1000", fileMigration: true },
  { text: "QEMU emulator version 10.0.13 (Debian 1:10.0.13+ds-0+deb13u1)\nCopyright (c) 2003-2025", noOptionRoms: false, reconnect: "reconnect-ms=1000", fileMigration: true },
] as const;

for (const c of cases) {
  test(`qemuFeatures: ${c.text.split("\n")[0]}`, () => {
    const f = qemuFeatures(c.text);
    assert.equal(f.noOptionRoms, c.noOptionRoms);
    assert.equal(f.reconnect, c.reconnect);
    assert.equal(f.fileMigration, c.fileMigration);
    const args = buildQemuArgs(makeConfig(), makePlan({ qemu: f }));
    const machine = args[args.indexOf("-M") + 1]!;
    assert.equal(machine.includes("x-option-roms=off"), c.noOptionRoms, machine);
    assert.ok(args.some((a) => a.startsWith("socket,id=agent,") && a.endsWith(`,${c.reconnect}`)), args.join(" "));
  });
}

for (const text of ["QEMU emulator version 6.2.0", "QEMU emulator version 7.1.0", "qemu-system-x86_64: command not found", ""]) {
  test(`qemuFeatures refuses ${JSON.stringify(text)} with a reason`, () => {
    assert.throws(() => qemuFeatures(text), (err: Error) => err instanceof QemuVersionError && /QEMU/.test(err.message));
  });
}

test("the kernel QEMU boots: a PVH vmlinux before QEMU 8 (extracted when only the bzImage ships), the bzImage from 8 on", async () => {
  const { chooseKernel } = await import("../../host/preflight.js");
  // [QEMU boots vmlinux reliably, has vmlinux, has vmlinuz] -> choice
  const table: [boolean, boolean, boolean, string][] = [
    [true, true, true, "vmlinux"],
    [true, true, false, "vmlinux"],
    [true, false, true, "extract"],
    [false, true, true, "vmlinuz"],
    [false, false, true, "vmlinuz"],
    [false, true, false, "vmlinux"],
  ];
  for (const [boots, x, z, want] of table) assert.equal(chooseKernel(boots, x, z), want, `${boots} ${x} ${z}`);
  assert.equal(qemuFeatures("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u18)").bootsVmlinux, true);
  assert.equal(qemuFeatures("QEMU emulator version 10.0.13 (Debian 1:10.0.13+ds-0+deb13u1)").bootsVmlinux, false);
});
