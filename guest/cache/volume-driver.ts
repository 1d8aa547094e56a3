// The dinv-cache docker volume driver: the one way a job asks for a cache promotion through the
// only thing it reaches, the guest's docker API, with any docker client and no token:
//   docker volume create -d dinv-cache save
// dockerd calls VolumeDriver.Create on this socket; the answer waits for the host's promotion, so
// the command returns when the generation is safe on disk, or fails with why. The volume itself is
// removed again right after (it holds nothing): the same command works for the next save.
// Plugin protocol: https://docs.docker.com/engine/extend/plugins_volume/ (a legacy plugin found by its socket).

import { createServer, request, type Server } from "node:http";
import { mkdir, rm } from "node:fs/promises";
import { z } from "zod";
import { CACHE_VOLUME_DRIVER } from "../../shared/constants.js";
import { DOCKER_SOCKET } from "../../shared/daemon-config.js";

export const DRIVER_SOCKET = `/run/docker/plugins/${CACHE_VOLUME_DRIVER}.sock`;
const MAX_BODY = 64 * 1024;
const NameSchema = z.object({ Name: z.string().min(1).max(255) });

export type SaveRequest = () => Promise<{ ok: boolean; message: string }>;

/** The plugin's answer to one call: HTTP body. Pure but for the save it starts. */
export async function answer(method: string, body: string, save: SaveRequest, removeLater: (name: string) => void, known: Set<string>): Promise<Record<string, unknown>> {
  const name = (() => {
    try {
      const parsed = NameSchema.safeParse(JSON.parse(body || "{}"));
      return parsed.success ? parsed.data.Name : undefined;
    } catch {
      return undefined;
    }
  })();
  switch (method) {
    case "/Plugin.Activate":
      return { Implements: ["VolumeDriver"] };
    case "/VolumeDriver.Capabilities":
      return { Capabilities: { Scope: "local" } };
    case "/VolumeDriver.Create": {
      if (!name) return { Err: "a volume name is needed" };
      const result = await save();
      if (!result.ok) return { Err: `dinv cache save failed: ${result.message}` };
      known.add(name);
      removeLater(name);
      return { Err: "" };
    }
    case "/VolumeDriver.Remove":
      if (name) known.delete(name);
      return { Err: "" };
    case "/VolumeDriver.Unmount":
      return { Err: "" };
    // dockerd asks Get before a create: a name it does not know must be unknown here, or no Create comes.
    case "/VolumeDriver.Get":
      return name && known.has(name) ? { Volume: { Name: name, Mountpoint: "" }, Err: "" } : { Err: "no such volume" };
    case "/VolumeDriver.List":
      return { Volumes: [...known].map((n) => ({ Name: n, Mountpoint: "" })), Err: "" };
    case "/VolumeDriver.Path":
      return { Mountpoint: "", Err: "" };
    case "/VolumeDriver.Mount":
      return { Err: `${CACHE_VOLUME_DRIVER} volumes only ask for a cache save; they cannot be mounted` };
    default:
      return { Err: `unknown call ${method.slice(0, 64)}` };
  }
}

/** Serve the driver on its socket; one save at a time (a request during a save shares its result). */
export async function serveVolumeDriver(save: SaveRequest, warn: (msg: string) => void, socketPath = DRIVER_SOCKET): Promise<Server> {
  let inFlight: Promise<{ ok: boolean; message: string }> | undefined;
  /** volumes created and not yet removed (each is removed right after its create) */
  const known = new Set<string>();
  const once: SaveRequest = () => {
    inFlight ??= save().finally(() => (inFlight = undefined));
    return inFlight;
  };
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
      if (body.length > MAX_BODY) req.destroy();
    });
    req.on("end", () => {
      void answer(req.url ?? "", body, once, (name) => removeVolume(name).catch((err: Error) => warn(`cannot remove the ${CACHE_VOLUME_DRIVER} volume ${name}: ${err.message}`)), known).then((reply) => {
        res.writeHead(200, { "Content-Type": "application/vnd.docker.plugins.v1+json" });
        res.end(JSON.stringify(reply));
      });
    });
  });
  await mkdir(socketPath.slice(0, socketPath.lastIndexOf("/")), { recursive: true });
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}

/** DELETE /volumes/NAME: dockerd takes the name's lock, so this runs once the create it answers is recorded. */
function removeVolume(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: DOCKER_SOCKET, path: `/volumes/${encodeURIComponent(name)}`, method: "DELETE", timeout: 30_000 }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 204 || res.statusCode === 404 ? resolve() : reject(new Error(`dockerd answered ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
