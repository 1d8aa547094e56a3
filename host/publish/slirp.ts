// Automatic forwards with QEMU's SLIRP: HMP's hostfwd_add / hostfwd_remove (QMP has no command of
// its own for them), sent through QMP's human-monitor-command. HMP reports a failure as text.

import { hostfwdCommands, type Forward } from "../net/forwards.js";
import { hmpCommand } from "../qemu/qmp.js";
import type { ForwardBackend } from "./publisher.js";
import type { AutoForward } from "./policy.js";

/** A published port's forward: the same port on both sides. */
const asForward = (f: Pick<AutoForward, "proto" | "bind" | "port">): Forward => ({ proto: f.proto, bind: f.bind, hostPort: f.port, guestPort: f.port });

export function slirpBackend(qmpSocket: string): ForwardBackend {
  return {
    async add(f) {
      const out = (await hmpCommand(qmpSocket, hostfwdCommands(asForward(f)).add)).trim();
      // Success prints nothing; "Could not set up host forwarding rule" is the usual failure (port taken).
      if (out) throw new Error(/could not set up/i.test(out) ? `port ${f.port} is already in use on the launcher side (${out})` : out);
    },
    async remove(f) {
      const out = (await hmpCommand(qmpSocket, hostfwdCommands(asForward(f)).remove)).trim();
      if (out && !/removed/i.test(out)) throw new Error(out);
    },
  };
}
