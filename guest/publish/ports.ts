// dockerd's list of running containers (GET /containers/json) -> the published ports the agent
// reports. Pure. dockerd lists each publish once per address family (0.0.0.0 and ::); the
// launcher needs one entry per protocol and port.

import { z } from "zod";
import type { PublishedPort } from "../../shared/protocol/published.js";

const ContainerSchema = z.object({
  Names: z.array(z.string()).default([]),
  Ports: z
    .array(z.object({ IP: z.string().optional(), PublicPort: z.number().int().optional(), Type: z.string() }))
    .nullable()
    .default([]),
});
export const ContainerListSchema = z.array(ContainerSchema);

/** Where a bound address is reachable from the launcher side, if at all. */
function scopeOf(ip: string | undefined): PublishedPort["scope"] | undefined {
  if (ip === undefined || ip === "" || ip === "0.0.0.0" || ip === "::") return "all";
  if (ip === "127.0.0.1" || ip === "::1") return "loopback";
  // 10.0.2.15 is the guest's own address on the user-mode network: the forward reaches it.
  if (ip === "10.0.2.15") return "all";
  // Any other address (a bridge's, say) is unreachable through SLIRP or passt.
  return undefined;
}

/** The published ports of a container list, one per protocol and port, sorted. */
export function publishedPorts(list: z.infer<typeof ContainerListSchema>): PublishedPort[] {
  const byKey = new Map<string, PublishedPort>();
  for (const c of list) {
    const container = (c.Names[0] ?? "").replace(/^\//, "").slice(0, 128) || "?";
    for (const p of c.Ports ?? []) {
      if (!p.PublicPort || p.PublicPort < 1 || p.PublicPort > 65535) continue;
      if (p.Type !== "tcp" && p.Type !== "udp") continue;
      const scope = scopeOf(p.IP);
      if (!scope) continue;
      const key = `${p.Type}/${p.PublicPort}`;
      const seen = byKey.get(key);
      // Every address wins over loopback only (dockerd refuses both on one port; be safe anyway).
      if (!seen || (seen.scope === "loopback" && scope === "all")) byKey.set(key, { proto: p.Type, scope, port: p.PublicPort, container });
    }
  }
  return [...byKey.values()].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}

/** Whether two sets are the same (both sorted by publishedPorts). */
export function samePorts(a: PublishedPort[], b: PublishedPort[]): boolean {
  return a.length === b.length && a.every((p, i) => p.proto === b[i]!.proto && p.port === b[i]!.port && p.scope === b[i]!.scope && p.container === b[i]!.container);
}
