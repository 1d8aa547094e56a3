// The real PortSource: dockerd's API on its unix socket. GET /containers/json lists the running
// containers with their published ports; GET /events streams one JSON object a line.

import { request } from "node:http";
import { DOCKER_SOCKET } from "../../shared/daemon-config.js";
import type { PublishedPort } from "../../shared/protocol/published.js";
import { ContainerListSchema, publishedPorts } from "../publish/ports.js";
import type { PortSource } from "../publish/watcher.js";
import { dockerApi } from "./dockerd.js";

/** Events after which the published set may differ. */
const FILTERS = JSON.stringify({
  type: ["container", "network"],
  event: ["start", "die", "destroy", "pause", "unpause", "connect", "disconnect"],
});

export const dockerPortSource: PortSource = {
  async list(): Promise<PublishedPort[]> {
    const body = await dockerApi("/containers/json", 5000);
    if (body === undefined) throw new Error("dockerd did not list its containers");
    const parsed = ContainerListSchema.safeParse(JSON.parse(body));
    if (!parsed.success) throw new Error(`unexpected container list: ${parsed.error.issues[0]?.message}`);
    return publishedPorts(parsed.data);
  },

  follow(onEvent: () => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: DOCKER_SOCKET, path: `/events?filters=${encodeURIComponent(FILTERS)}`, method: "GET", signal }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`dockerd answered /events with ${res.statusCode}`));
          return;
        }
        onEvent();
        // Each event is one line of JSON; what it says does not matter, only that something changed.
        res.on("data", (chunk: Buffer) => {
          if (chunk.includes(0x0a)) onEvent();
        });
        res.on("end", resolve);
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  },
};
