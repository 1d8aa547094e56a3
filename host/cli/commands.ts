// dinv status | wait | events | stop | health: clients of the launcher's control API.

import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import type { DinvState } from "../../shared/protocol/control.js";
import { ControlClient, ControlRequestError, UnreachableError } from "../control/client.js";
import { ConfigError, dirVariable } from "../config/env.js";
import { RUN_FILES } from "../run/run-files.js";
import { eventLines, progressLine, summary } from "./format.js";

/** Exit codes of the client commands. */
export const CLI_EXIT = { ok: 0, notReady: 1, usage: 2, unreachable: 3, refused: 4 } as const;

const common = { [CLI_EXIT.usage]: "bad arguments", [CLI_EXIT.unreachable]: "no launcher answers", [CLI_EXIT.refused]: "the launcher refused the request" };
/** Each client command's exit codes and what they mean (the README's commands table is checked against it). */
export const COMMAND_EXITS: Record<string, Record<number, string>> = {
  status: { [CLI_EXIT.ok]: "ready", [CLI_EXIT.notReady]: "not ready", ...common },
  wait: { [CLI_EXIT.ok]: "ready", [CLI_EXIT.notReady]: "degraded, stopping, stopped, failed or timed out (the reason on stderr)", ...common },
  events: { [CLI_EXIT.ok]: "the launcher exited", ...common },
  stop: { [CLI_EXIT.ok]: "the guest stopped cleanly", [CLI_EXIT.notReady]: "the launcher exited without a confirmed clean stop", ...common },
  health: { [CLI_EXIT.ok]: "healthy", [CLI_EXIT.notReady]: "not healthy", ...common },
};

export class UsageError extends Error {}

export const HELP: Record<string, string> = {
  status: "Usage: dinv status [--json]\n\nPrints the launcher's state. Exit 0 when ready, 1 when not, 3 when no launcher answers.\n",
  wait: "Usage: dinv wait [--timeout SECONDS]\n\nBlocks until dockerd in the guest is ready (exit 0), or it is degraded, stopping, stopped or failed, or the timeout\n(default 300) passes (exit 1, with the reason). Waits for the launcher to appear, too (exit 3 if it never does).\n",
  events: "Usage: dinv events [--json]\n\nStreams the state as it changes, starting with the current one (one JSON object a line with --json).\n",
  stop: "Usage: dinv stop [--timeout SECONDS]\n\nStops like SIGTERM: dockerd's containers get SECONDS (default DINV_SHUTDOWN_TIMEOUT), the guest unmounts\nits disks, the launcher exits. Exit 0 when the guest stopped cleanly.\n",
  health: "Usage: dinv health\n\nFor HEALTHCHECK: exit 0 only when the guest is ready and dockerd answers /_ping through the forward.\n",
};

const TimeoutSchema = z.coerce.number().int().min(0).max(86_400);

function options(args: string[], spec: { json?: boolean; timeout?: boolean }) {
  const parsed = (() => {
    try {
      return parseArgs({
        args,
        strict: true,
        options: {
          ...(spec.json ? { json: { type: "boolean" as const } } : {}),
          ...(spec.timeout ? { timeout: { type: "string" as const } } : {}),
        },
      }).values as { json?: boolean; timeout?: string };
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  let timeout: number | undefined;
  if (parsed.timeout !== undefined) {
    const t = TimeoutSchema.safeParse(parsed.timeout);
    if (!t.success) throw new UsageError(`--timeout ${JSON.stringify(parsed.timeout)}: expected whole seconds from 0 to 86400`);
    timeout = t.data;
  }
  return { json: !!parsed.json, timeout };
}

/** The control socket: DINV_RUN_DIR/control.sock (the same variable `dinv run` uses). */
export function controlSocket(env: Record<string, string | undefined>): string {
  try {
    return join(dirVariable(env, "DINV_RUN_DIR"), RUN_FILES.controlSocket);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.problems.join("; "));
    throw err;
  }
}

type Out = { write(text: string): void; isTTY?: boolean };

export async function runClientCommand(command: string, args: string[], env: Record<string, string | undefined>, out: Out, err: Out): Promise<number> {
  const socket = controlSocket(env);
  switch (command) {
    case "status": {
      const o = options(args, { json: true });
      const client = await ControlClient.connect(socket);
      const state = await client.request({ type: "get-state" });
      client.close();
      out.write(o.json ? `${JSON.stringify(state)}\n` : `${summary(state)}\n`);
      return state.phase === "ready" ? CLI_EXIT.ok : CLI_EXIT.notReady;
    }
    case "wait": {
      const o = options(args, { timeout: true });
      const deadline = Date.now() + (o.timeout ?? 300) * 1000;
      const client = await ControlClient.connect(socket, deadline);
      return await new Promise<number>((resolve) => {
        let last = "";
        const finish = (code: number, message?: string) => {
          clearTimeout(timer);
          client.onclose = undefined;
          client.close();
          if (out.isTTY) out.write("\n");
          if (message) err.write(`${message}\n`);
          resolve(code);
        };
        const timer = setTimeout(() => finish(CLI_EXIT.notReady, `dinv wait: not ready after ${o.timeout ?? 300} s (${last || "no state"})`), Math.max(0, deadline - Date.now()));
        client.onclose = () => finish(CLI_EXIT.unreachable, "dinv wait: the launcher went away");
        client.onstate = (state) => {
          const line = progressLine(state);
          if (out.isTTY) out.write(`\r\x1b[K${line}`);
          else if (line.replace(/^\[[^\]]*\] /, "") !== last.replace(/^\[[^\]]*\] /, "")) out.write(`${line}\n`);
          last = line;
          if (state.phase === "ready") finish(CLI_EXIT.ok);
          else if (state.phase !== "booting") {
            const errors = state.errors.map((e) => `${e.message}${e.hint ? ` (hint: ${e.hint})` : ""}`).join("; ");
            const reasons = errors || (state.phase === "failed" ? state.reason ?? "" : "");
            finish(CLI_EXIT.notReady, `dinv wait: ${state.phase}${reasons ? `: ${reasons}` : ""}`);
          }
        };
        void client.request({ type: "subscribe" }).catch(() => undefined);
      });
    }
    case "events": {
      const o = options(args, { json: true });
      const client = await ControlClient.connect(socket);
      let previous: DinvState | undefined;
      return await new Promise<number>((resolve) => {
        client.onstate = (state) => {
          if (o.json) out.write(`${JSON.stringify(state)}\n`);
          else for (const line of eventLines(previous, state)) out.write(`${line}\n`);
          previous = state;
        };
        client.onclose = () => resolve(CLI_EXIT.ok);
        void client.request({ type: "subscribe" }).catch(() => undefined);
      });
    }
    case "stop": {
      const o = options(args, { timeout: true });
      const client = await ControlClient.connect(socket);
      let final: DinvState | undefined;
      const closed = new Promise<void>((resolve) => (client.onclose = resolve));
      client.onstate = (state) => (final = state);
      await client.request({ type: "subscribe" });
      await client.request({ type: "stop", ...(o.timeout !== undefined ? { timeoutSeconds: o.timeout } : {}) });
      await closed;
      const clean = final?.phase === "stopped" && final.guest?.state.phase === "stopped";
      err.write(clean ? "dinv stop: the guest stopped cleanly\n" : `dinv stop: the launcher exited (last state: ${final?.phase ?? "unknown"})\n`);
      return clean ? CLI_EXIT.ok : CLI_EXIT.notReady;
    }
    case "health": {
      options(args, {});
      const client = await ControlClient.connect(socket);
      const reply = await client.request({ type: "health" }, 5000).finally(() => client.close());
      out.write(`${reply.healthy ? "healthy" : "unhealthy"}: ${reply.reason}\n`);
      return reply.healthy ? CLI_EXIT.ok : CLI_EXIT.notReady;
    }
  }
  throw new UsageError(`unknown command ${command}`);
}

export function describeFailure(error: unknown): { code: number; message: string } {
  if (error instanceof UsageError) return { code: CLI_EXIT.usage, message: error.message };
  if (error instanceof UnreachableError) return { code: CLI_EXIT.unreachable, message: error.message };
  if (error instanceof ControlRequestError) return { code: CLI_EXIT.refused, message: error.message };
  return { code: 1, message: error instanceof Error ? error.message : String(error) };
}
