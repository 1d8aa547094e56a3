// A process the agent did not spawn (dockerd started by the guest init): its exit, seen by
// polling /proc (it is tini's child, not ours), and its output, followed in the file it writes.

import { open, readFile, truncate } from "node:fs/promises";

/** Field 22 of /proc/PID/stat (start time in clock ticks) and the state letter; undefined when gone. Pure. */
export function parseProcStat(text: string): { state: string; startTicks: string } | undefined {
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(" ");
  const state = rest[0];
  const startTicks = rest[19];
  return state && startTicks ? { state, startTicks } : undefined;
}

const readStat = (pid: number) => readFile(`/proc/${pid}/stat`, "utf8").then(parseProcStat, () => undefined);

export interface AdoptedProcess {
  pid: number;
  /** resolves when the process is gone (its exit status is tini's to see, not ours) */
  exited: Promise<string>;
  running(): boolean;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Watch pid; undefined when it is not running now. The start time guards against pid reuse. Once
 * it was sent a signal, its exit is looked for every fastPollMs: a stop waits on it.
 */
export async function adoptProcess(pid: number, pollMs = 500, fastPollMs = 25): Promise<AdoptedProcess | undefined> {
  const first = await readStat(pid);
  if (!first || first.state === "Z") return undefined;
  let gone = false;
  let timer: NodeJS.Timeout | undefined;
  let resolveExited: (how: string) => void = () => undefined;
  const exited = new Promise<string>((resolve) => (resolveExited = resolve));
  const poll = (every: number) => {
    clearInterval(timer);
    timer = setInterval(() => {
      void readStat(pid).then((now) => {
        if (gone || (now && now.state !== "Z" && now.startTicks === first.startTicks)) return;
        clearInterval(timer);
        gone = true;
        resolveExited("exited; started by the guest init, so its exit status is not known");
      });
    }, every);
  };
  poll(pollMs);
  return {
    pid,
    exited,
    running: () => !gone,
    kill: (signal) => {
      if (gone) return;
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone: the poll will see it */
      }
      poll(fastPollMs);
    },
  };
}

/**
 * Forward each new line of a file that another process appends to (O_APPEND), until stopped.
 * Past maxBytes, once everything is read, the file is emptied so a long-running guest does not
 * fill its RAM with logs (appends then continue at offset 0).
 */
export function followFile(path: string, online: (line: string) => void, pollMs = 500, maxBytes = 4 * 2 ** 20): () => void {
  let offset = 0;
  let rest = "";
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const handle = await open(path, "r").catch(() => undefined);
      if (!handle) return;
      try {
        const { size } = await handle.stat();
        if (size < offset) offset = 0;
        while (offset < size) {
          const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
          const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          const lines = (rest + buf.subarray(0, bytesRead).toString("utf8")).split("\n");
          rest = lines.pop() ?? "";
          for (const line of lines) if (line.trim()) online(line);
        }
        if (offset >= maxBytes && offset === size) {
          await truncate(path, 0);
          offset = 0;
        }
      } finally {
        await handle.close();
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), pollMs);
  void tick();
  return () => {
    clearInterval(timer);
    void tick();
  };
}
