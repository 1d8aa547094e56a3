// QEMU as a supervised child: console lines out, exit observed, signals sent by pid.

import { execa } from "execa";

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
): QemuProcess {
  const startedAt = Date.now();
  const child = execa(binary, args, {
    reject: false,
    stdin: "ignore",
    buffer: false,
    // Own process group: a terminal's Ctrl-C must reach only the launcher, which then stops
    // the guest cleanly; QEMU on SIGINT would exit at once.
    detached: true,
  });
  let sawConsole = false;
  const lines = (stream: NodeJS.ReadableStream | null, sink: (line: string) => void, mark: boolean) => {
    let rest = "";
    stream?.on("data", (chunk: Buffer) => {
      if (mark) sawConsole = true;
      const parts = (rest + chunk.toString("utf8")).split("\n");
      rest = parts.pop() ?? "";
      // eslint-disable-next-line no-control-regex
      for (const part of parts) if (part.trim()) sink(part.replace(/\r$/, "").replace(/\x1b\[[0-9;]*[A-Za-z]/g, ""));
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
