// QEMU as a supervised child: console lines out, exit observed, signals sent by pid.

import { execa } from "execa";
import { cleanText } from "../guest-link/guest-text.js";

export interface QemuExit {
  exitCode: number | undefined;
  signal: string | undefined;
}

export interface QemuProcess {
  pid: number | undefined;
  startedAt: number;
  exited: Promise<QemuExit>;
  /** whether anything has appeared on the guest console yet */
  readonly sawConsole: boolean;
  kill(signal: NodeJS.Signals): void;
}

export function startQemu(
  binary: string,
  args: string[],
  onConsoleLine: (line: string) => void,
  onStderrLine: (line: string) => void,
  /** an open file QEMU gets as its fd 3 (a saved state for `-incoming fd:3`) */
  fd3?: number,
): QemuProcess {
  const startedAt = Date.now();
  const child = execa(binary, args, {
    reject: false,
    // execa's types allow a bare fd number only for fds 0-2; at run time it passes it to spawn.
    stdio: ["ignore", "pipe", "pipe", ...(fd3 !== undefined ? [fd3] : [])] as unknown as ["ignore", "pipe", "pipe"],
    buffer: false,
    // Own process group: a terminal's Ctrl-C must reach only the launcher, which then stops
    // the guest cleanly; QEMU on SIGINT would exit at once.
    detached: true,
  });
  let sawConsole = false;
  const lines = (stream: NodeJS.ReadableStream | null, sink: (line: string) => void, mark: boolean) => {
    const splitter = new LineSplitter(sink);
    stream?.on("data", (chunk: Buffer) => {
      if (mark) sawConsole = true;
      splitter.push(chunk.toString("utf8"));
    });
  };
  lines(child.stdout, onConsoleLine, true);
  lines(child.stderr, onStderrLine, false);
  const exited = child.then((r) => ({ exitCode: r.exitCode ?? undefined, signal: r.signal ?? undefined }));
  return {
    pid: child.pid,
    startedAt,
    exited,
    get sawConsole() {
      return sawConsole;
    },
    kill: (signal) => {
      child.kill(signal);
    },
  };
}

/**
 * Steps of a QEMU's start-up, each raced against its exit: an exit first rejects the step with
 * why(exit). Unhandled once the steps are over, that rejection is dropped.
 */
export function untilExit(qemu: QemuProcess, why: (e: QemuExit) => string): <T>(p: Promise<T>) => Promise<T> {
  const exited = qemu.exited.then((e): never => {
    throw new Error(why(e));
  });
  void exited.catch(() => undefined);
  return (p) => Promise.race([p, exited]);
}

/** Longest console line kept, characters; the rest of a longer line is dropped (the guest is untrusted). */
export const MAX_CONSOLE_LINE = 8192;

/** Splits a stream into clean lines: bounded length, no terminal escapes or control characters. */
export class LineSplitter {
  private rest = "";
  private dropping = false;

  constructor(private readonly sink: (line: string) => void) {}

  push(text: string): void {
    const parts = (this.rest + text).split("\n");
    this.rest = parts.pop() ?? "";
    for (const part of parts) {
      if (this.dropping) {
        this.dropping = false; // the end of an over-long line
        continue;
      }
      this.emit(part);
    }
    if (this.rest.length > MAX_CONSOLE_LINE) {
      if (!this.dropping) this.emit(`${this.rest.slice(0, MAX_CONSOLE_LINE)} [line truncated]`);
      this.dropping = true;
      this.rest = "";
    }
  }

  private emit(line: string): void {
    const clean = cleanText(line.replace(/\r$/, ""));
    if (clean.trim()) this.sink(clean);
  }
}
