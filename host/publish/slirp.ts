// Automatic forwards with QEMU's SLIRP: HMP's hostfwd_add / hostfwd_remove (QMP has no command of
// its own for them), sent through QMP's human-monitor-command. HMP reports a failure as text.

import { NETDEV_ID } from "../qemu/args.js";
import { hmpCommand } from "../qemu/qmp.js";
import type { ForwardBackend } from "./publisher.js";
import type { AutoForward } from "./policy.js";

/** HMP command lines for one forward. Pure. */
export function hostfwdCommands(f: Pick<AutoForward, "proto" | "bind" | "port">): { add: string; remove: string } {
  const rule = `${f.proto}:${f.bind}:${f.port}`;
  return { add: `hostfwd_add ${NETDEV_ID} ${rule}-:${f.port}`, remove: `hostfwd_remove ${NETDEV_ID} ${rule}` };
}

export function slirpBackend(qmpSocket: string): ForwardBackend {
  return {
    async add(f) {
      const out = (await hmpCommand(qmpSocket, hostfwdCommands(f).add)).trim();
      // Success prints nothing; "Could not set up host forwarding rule" is the usual failure (port taken).
      if (out) throw new Error(/could not set up/i.test(out) ? `port ${f.port} is already in use on the launcher side (${out})` : out);
    },
    async remove(f) {
      const out = (await hmpCommand(qmpSocket, hostfwdCommands(f).remove)).trim();
      if (out && !/removed/i.test(out)) throw new Error(out);
    },
  };
}
