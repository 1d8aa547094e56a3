// How a run that started QEMU ends: its exit code (0: the run stopped, else it failed) and the line that says
// why, from what the run saw. Pure.

import { EXIT } from "./launch-options.js";

export interface RunEnd {
  /** the guest agent spoke another protocol version */
  mismatch: boolean;
  /** `dinv run COMMAND`'s exit code (or `dinv warm save`'s verdict), once known */
  commandExit: number | undefined;
  /** the guest reported "stopped" (dockerd stopped, disks unmounted and synced) */
  clean: boolean;
  /** a stop was asked for (signal, `dinv stop`, the command's end) */
  requested: boolean;
  /** a second request forced it */
  forced: boolean;
  /** how the stop controller ended QEMU; undefined: no stop ran */
  how: "clean" | "forced" | undefined;
}

export interface Verdict {
  code: number;
  level: "info" | "warn" | "error";
  message: string;
}

export function runVerdict(e: RunEnd): Verdict {
  if (e.mismatch) return { code: EXIT.failed, level: "error", message: "stopped: the guest agent and the launcher speak different protocol versions (see above)" };
  if (e.commandExit !== undefined) {
    const unconfirmed = e.clean ? "" : " (the guest did not confirm a clean shutdown)";
    const code = e.commandExit === 0 && !e.clean ? EXIT.forced : e.commandExit;
    return { code, level: "info", message: `exiting with the command's exit code ${e.commandExit}${unconfirmed}` };
  }
  if (e.requested && !e.forced && e.how === "clean") {
    return { code: EXIT.ok, level: "info", message: e.clean ? "guest stopped cleanly; QEMU exited" : "stopped during boot, before anything was mounted" };
  }
  if (e.requested) return { code: EXIT.forced, level: "warn", message: "stopped, but the guest did not confirm a clean shutdown" };
  return { code: EXIT.failed, level: "error", message: "QEMU exited unexpectedly (guest crash or power-off)" };
}
