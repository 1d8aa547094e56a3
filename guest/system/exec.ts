// Running guest commands: output captured, failures turned into errors that quote the command.

// execa is imported where used: an agent whose dockerd the guest init started runs no command
// while it boots, and loading execa (with child_process and tty) costs ~0.5 s of CPU under TCG.
export const loadExeca = () => import("execa").then((m) => m.execa);

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run a command; never throws for a non-zero exit (the caller decides what it means). */
export async function run(file: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  const execa = await loadExeca();
  const result = await execa(file, args, { reject: false, timeout: timeoutMs, stdin: "ignore" });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ""),
    stderr: String(result.stderr ?? ""),
  };
}

/** Run a command that must succeed. */
export async function must(file: string, args: string[], timeoutMs?: number): Promise<string> {
  const result = await run(file, args, timeoutMs);
  if (result.exitCode !== 0) {
    const detail = (result.stderr || result.stdout).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`${file} ${args.join(" ")} exited ${result.exitCode}: ${detail}`);
  }
  return result.stdout;
}
