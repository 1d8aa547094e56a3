// `dinv run`: the configuration accepted and the machine probed (nothing created), the run
// directory, kernel, warm start and disks prepared, then one Run owns the run to its exit code.

import { buildQemuArgs, PlanError } from "../qemu/args.js";
import { EXIT, type LaunchOptions } from "./launch-options.js";
import { Run } from "./run.js";
import { prepareLaunch } from "./prepare.js";
import { prepareFiles } from "./prepare-files.js";
import { qemuPlan } from "./qemu-plan.js";

export { EXIT, type LaunchOptions } from "./launch-options.js";

export async function runLauncher(options: LaunchOptions): Promise<number> {
  const { log } = options;
  const prepared = await prepareLaunch(options.env, options.defaultGuestDir, options.qemuBinary ?? "qemu-system-x86_64", log, options.kvmProbe);
  if ("refused" in prepared) {
    log.error(prepared.refused);
    return EXIT.config;
  }
  try {
    // An impossible plan (too many shares for microvm) is refused before any file is touched.
    buildQemuArgs(prepared.config, qemuPlan(prepared, { kernel: prepared.pre.guest.kernel, rootImage: prepared.pre.guest.rootImage, initrd: prepared.pre.guest.initrd, shareFs: prepared.shareChoice.fs === "virtiofs" ? "virtiofs" : "9p", net: { kind: "slirp" }, withholdDockerForward: false }, "tcg"));
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    log.error(err.message);
    return EXIT.config;
  }
  const saveOnly = options.warmSaveOnly ? { ...(options.command?.length ? { command: options.command } : {}) } : undefined;
  const files = await prepareFiles(prepared, log, saveOnly);
  if ("refused" in files) {
    log.error(files.refused);
    return EXIT.config;
  }
  return new Run(prepared, files, options).start();
}
