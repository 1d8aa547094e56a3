// Human-readable renderings of the launcher state. Pure.

import type { DinvState } from "../../shared/protocol/control.js";
import { formatSize } from "../config/size.js";

const seconds = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);

export function summary(state: DinvState): string {
  const lines = [
    `dinv: ${state.phase}${state.phase === "failed" && state.reason ? `: ${state.reason}` : ""}${state.accel ? ` (${state.accel})` : ""}`,
    `  docker:  ${state.dockerHost}${state.dockerCertPath ? ` (TLS, DOCKER_CERT_PATH=${state.dockerCertPath})` : ""}${state.dockerVersion ? `  dockerd ${state.dockerVersion}` : ""}`,
    `  vm:      ${state.vm.machine}, ${state.vm.cpus} vCPU, ${formatSize(state.vm.memoryBytes)}`,
  ];
  if (state.ports.tcp.length || state.ports.udp.length) lines.push(`  ports:   tcp ${state.ports.tcp.join(",") || "-"}  udp ${state.ports.udp.join(",") || "-"}`);
  const auto = state.forwards.filter((f) => f.source === "auto");
  if (auto.length) {
    lines.push("  published:");
    for (const f of auto) lines.push(`    ${f.proto} ${f.address}:${f.port} -> guest ${f.guestPort}  (${f.container ?? "?"})`);
  }
  for (const r of state.refused) lines.push(`  not published: ${r.proto} ${r.port} (${r.container}): ${r.reason}`);
  if (state.mounts.length) lines.push(`  mounts:  ${state.mounts.join(", ")}`);
  if (state.warm) {
    lines.push(`  start:   ${state.warm.start}${state.warm.loadMs !== undefined ? ` (loaded in ${seconds(state.warm.loadMs)})` : ""}: ${state.warm.reason}`);
    if (state.warm.saved) lines.push(`  warm:    ${state.warm.saved}`);
  }
  if (state.cache) lines.push(`  cache:   ${cacheLine(state.cache)}`);
  if (state.steps.length) {
    // After a warm start these are the steps of the boot the saved state came from.
    lines.push(state.warm?.start === "warm" ? "  steps (of the saved boot):" : "  steps:");
    for (const s of state.steps) {
      const took = s.startedMs !== undefined && s.endedMs !== undefined ? seconds(s.endedMs - s.startedMs) : "";
      lines.push(`    ${s.state.padEnd(7)} ${s.name.padEnd(8)} ${took.padStart(7)}  ${s.detail ?? ""}`.trimEnd());
    }
  }
  for (const e of state.errors) lines.push(`  error:   ${e.message}${e.hint ? `\n           hint: ${e.hint}` : ""}`);
  return lines.join("\n");
}

/** One line of boot progress: phase and the step in progress. */
export function progressLine(state: DinvState, now = Date.now()): string {
  const running = state.steps.find((s) => s.state === "running");
  const elapsed = seconds(now - state.startedAt);
  const why = state.errors[0]?.message ?? (state.phase === "failed" ? state.reason : undefined);
  return `[${elapsed}] ${state.phase}${running ? `: ${running.name}` : ""}${why ? `: ${why}` : ""}`;
}

const forwardLabel = (f: DinvState["forwards"][number]) => `${f.proto} ${f.address}:${f.port}${f.container ? ` (${f.container})` : ""}`;

/** `dinv events` lines for one new state: progress when it moved, and each forward opened, closed or refused. Pure. */
export function eventLines(previous: DinvState | undefined, state: DinvState, now = Date.now()): string[] {
  const lines: string[] = [];
  const progress = progressLine(state, now);
  if (!previous || progressLine(previous, now) !== progress) lines.push(progress);
  const key = (f: DinvState["forwards"][number]) => `${f.proto}:${f.address}:${f.port}`;
  const before = new Map((previous?.forwards ?? []).filter((f) => f.source === "auto").map((f) => [key(f), f]));
  const after = new Map(state.forwards.filter((f) => f.source === "auto").map((f) => [key(f), f]));
  for (const [k, f] of after) if (!before.has(k)) lines.push(`published ${forwardLabel(f)}`);
  for (const [k, f] of before) if (!after.has(k)) lines.push(`unpublished ${forwardLabel(f)}`);
  const refusedKey = (r: DinvState["refused"][number]) => `${r.proto}/${r.port}/${r.reason}`;
  const wasRefused = new Set((previous?.refused ?? []).map(refusedKey));
  for (const r of state.refused) if (!wasRefused.has(refusedKey(r))) lines.push(`not published ${r.proto} ${r.port} (${r.container}): ${r.reason}`);
  return lines;
}

/** `cache: KEY generation N (from restore key R), SIZE; last save …`. Pure. */
export function cacheLine(cache: NonNullable<DinvState["cache"]>): string {
  const base = cache.generation === null ? `${cache.key}, empty (${cache.reason})` : `${cache.key} generation ${cache.generation}${cache.restoredFrom ? ` (from restore key ${cache.restoredFrom})` : ""}${cache.bytes !== undefined ? `, ${formatSize(cache.bytes)}` : ""}`;
  const save = cache.save === "off" ? "; saves off" : "";
  const last = cache.lastSave ? `; last save: ${cache.lastSave.ok ? `generation ${cache.lastSave.generation}` : `failed: ${cache.lastSave.message}`}` : "";
  return `${base}${save}${last}`;
}
