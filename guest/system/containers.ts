// The containers a cache generation holds (the job that promoted it left them): removed before the
// next job's dockerd is announced ready, with their anonymous volumes; images, the build cache and
// named volumes stay.

import { request } from "node:http";
import { z } from "zod";
import { DOCKER_SOCKET } from "../../shared/daemon-config.js";
import { dockerApi } from "./dockerd.js";

const ListSchema = z.array(z.object({ Id: z.string().regex(/^[0-9a-f]{64}$/) }));

export async function removeAllContainers(): Promise<number> {
  const body = await dockerApi("/containers/json?all=1", 10_000);
  if (body === undefined) throw new Error("dockerd did not list its containers");
  const ids = ListSchema.parse(JSON.parse(body)).map((c) => c.Id);
  for (const id of ids) await remove(id);
  return ids.length;
}

function remove(id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: DOCKER_SOCKET, path: `/containers/${id}?force=1&v=1`, method: "DELETE", timeout: 60_000 }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 204 || res.statusCode === 404 ? resolve() : reject(new Error(`dockerd answered ${res.statusCode} removing container ${id.slice(0, 12)}`))));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
