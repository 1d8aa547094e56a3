// The end of a guest's life: after dockerd stopped, every process still running but the init,
// its shell and the agent is asked to end, then killed, as an init system does before unmounting.
// A container's process or a shim left behind keeps a mount namespace of its own alive, and with
// it the docker disk's filesystem, which then never gets its final unmount (the journal is left
// for recovery at the next boot).

import { readdirSync, readFileSync } from "node:fs";
import { GUEST_FILES } from "../../shared/guest-paths.js";

/**
 * User-space processes other than init, its shell and us, with their command lines. Synchronous:
 * /proc is in memory, and under TCG each asynchronous read's round trip through libuv costs more than the read.
 */
function others(): { pid: number; cmdline: string }[] {
  const keep = new Set([1, process.pid, process.ppid]);
  const found: { pid: number; cmdline: string }[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    /* no /proc: nothing to end */
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || keep.has(pid)) continue;
    let cmdline = Buffer.alloc(0);
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`);
    } catch {
      /* gone meanwhile */
    }
    // Kernel threads have an empty command line.
    if (cmdline.length > 0) found.push({ pid, cmdline: cmdline.toString("utf8") });
  }
  return found;
}

/**
 * The guest init's containerd (alpine/rootfs/usr/lib/dinv/prep): its root and state are on the RAM
 * overlay, so it has nothing to flush, and its graceful exit takes seconds under TCG.
 */
const killAtOnce = (cmdline: string) => cmdline.includes(GUEST_FILES.containerdConfig);

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
};

/** SIGTERM to all others, SIGKILL to what is left after graceMs; resolves with how many were ended. */
export async function endOtherProcesses(graceMs = 3000): Promise<{ terminated: number; killed: number }> {
  const found = others();
  for (const p of found) signal(p.pid, killAtOnce(p.cmdline) ? "SIGKILL" : "SIGTERM");
  const first = found.map((p) => p.pid);
  const deadline = Date.now() + graceMs;
  let left = first;
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = new Set(others().map((p) => p.pid));
    left = left.filter((p) => now.has(p));
  }
  for (const pid of left) signal(pid, "SIGKILL");
  // Zombies are reaped by tini; their mounts are gone once they exit.
  if (left.length) await new Promise((r) => setTimeout(r, 200));
  return { terminated: first.length - left.length, killed: left.length };
}
