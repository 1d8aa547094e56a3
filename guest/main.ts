// Guest agent entry point: run by the guest init (alpine/rootfs/usr/lib/dinv/init), from the
// agent's startup snapshot (alpine/lib/agent-snapshot.sh) or, failing that, from this bundle.

import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { startupSnapshot } from "node:v8";
import { HostMessageSchema, type HostMessage } from "../shared/protocol/host-messages.js";
import type { GuestMessage } from "../shared/protocol/guest-messages.js";
import { StreamTransport } from "../shared/transport.js";
import { GUEST_FILES } from "../shared/guest-paths.js";
import { Agent } from "./agent.js";
import { findPort, openPort } from "./channel-port.js";

declare const AGENT_VERSION: string;

async function main(fromSnapshot: boolean): Promise<void> {
  // Loaded here, not at the top: it needs child_process, http and tty, which Node 18 cannot hold
  // in a startup snapshot (esbuild makes a dynamically imported module lazy in the bundle).
  const { LinuxSystem, readUptimeMs } = await loadQuietly(() => import("./system/linux.js"));
  // The guest init falls back to the plain bundle only if no agent got this far (see its script).
  try {
    writeFileSync(GUEST_FILES.agentStarted, `${process.pid}\n`);
  } catch {
    /* not in a dinv guest: nothing relies on the marker then */
  }
  const agent = new Agent(new LinuxSystem(), {
    bootId: randomUUID(),
    version: typeof AGENT_VERSION === "string" ? AGENT_VERSION : "dev",
    clock: { now: () => Date.now(), uptimeMs: readUptimeMs },
    dockerdTimeoutMs: 180_000,
  });
  const { user, system } = process.cpuUsage();
  const how = `${fromSnapshot ? "from its startup snapshot, " : ""}${((user + system) / 1e6).toFixed(2)} s of CPU`;
  console.log(`dinv-agent: started at ${(readUptimeMs() / 1000).toFixed(2)}s (${how})`);
  void agent.prepare();
  const path = await findPort();
  // Reconnect forever: the host may restart its end; boot state survives in the agent.
  for (;;) {
    const port = await openPort(path);
    const transport = new StreamTransport<HostMessage, GuestMessage>(port.stream, HostMessageSchema);
    agent.attach(transport);
    await new Promise<void>((resolve) => {
      const attached = transport.onclose;
      transport.onclose = () => {
        attached?.();
        resolve();
      };
    });
    await port.close().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Node 18 warns about each built-in module it could not have put in a snapshot, even when it is
 * loaded after the snapshot, as here by design: only that warning is dropped, while loading.
 */
async function loadQuietly<T>(load: () => Promise<T>): Promise<T> {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (!String(warning).includes("not yet supported in user snapshots")) (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return await load();
  } finally {
    process.emitWarning = emit;
  }
}

function run(fromSnapshot: boolean): void {
  main(fromSnapshot).catch((err) => {
    console.error(`dinv-agent: fatal: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  });
}

// The guest build runs this bundle under `node --build-snapshot`: module loading ends up in the
// snapshot and main runs when the snapshot is loaded. Under TCG Node 18 needs ~4 s of CPU to
// bootstrap and load this bundle, ~2 s from the snapshot (measured in the guest).
if (startupSnapshot?.isBuildingSnapshot?.()) startupSnapshot.setDeserializeMainFunction(() => run(true));
else run(false);
