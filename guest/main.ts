// Guest agent entry point: run by the guest init (alpine/rootfs/usr/lib/dinv/init).

import { randomUUID } from "node:crypto";
import { HostMessageSchema, type HostMessage } from "../shared/protocol/host-messages.js";
import type { GuestMessage } from "../shared/protocol/guest-messages.js";
import { StreamTransport } from "../shared/transport.js";
import { Agent } from "./agent.js";
import { findPort, openPort } from "./port.js";
import { LinuxSystem, readUptimeMs } from "./system/linux.js";

declare const AGENT_VERSION: string;

async function main(): Promise<void> {
  const agent = new Agent(new LinuxSystem(), {
    bootId: randomUUID(),
    version: typeof AGENT_VERSION === "string" ? AGENT_VERSION : "dev",
    clock: { now: () => Date.now(), uptimeMs: readUptimeMs },
    dockerdTimeoutMs: 180_000,
  });
  console.log(`dinv-agent: started at ${(readUptimeMs() / 1000).toFixed(2)}s`);
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

main().catch((err) => {
  console.error(`dinv-agent: fatal: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
