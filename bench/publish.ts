// Automatic publishing: how soon a port published in the guest (docker run -d -p) answers on the
// launcher side, and how soon after docker rm -f the launcher has closed its forward (its state, as
// `dinv events` sees it, no longer lists it), over 20 containers; then throughput and
// small-request latency through an automatic forward against a DINV_TCP_PORTS forward to the same
// container in the same run (both are SLIRP hostfwd: they should be equal).
// Usage: node --import tsx bench/publish.ts [--json]

import { join } from "node:path";
import { ControlClient } from "../host/control/client.js";
import type { DinvState } from "../shared/protocol/control.js";
import { parseArgs } from "node:util";
import { DinvProcess, freePort } from "../test/helpers/dinv-process.js";
import { docker, importBusybox } from "../test/helpers/docker-cli.js";
import { get, median, table } from "./lib.js";

const CONTAINERS = 20;
const BIG_MIB = 64;


/** ms until `ok` holds for a GET of url (polled every 10 ms, at most 30 s). */
async function until(url: string, ok: (bytes: number) => boolean): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 30_000) {
    if (ok((await get(url, 1000)).bytes)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${url}: no change within 30 s`);
}

const stats = (xs: number[]) => ({ median_ms: Math.round(median(xs)), max_ms: Math.round(Math.max(...xs)) });

export async function benchPublish(log: (s: string) => void) {
  const staticPort = await freePort();
  const dinv = await DinvProcess.create({ DINV_TCP_PORTS: String(staticPort) });
  dinv.start();
  try {
    const state = await dinv.waitUntilSettled();
    if (state.phase !== "ready") throw new Error(dinv.tail());
    importBusybox(dinv.dockerHost);
    // The launcher's forwards as they change, from its control API.
    const client = await ControlClient.connect(join(dinv.env.DINV_RUN_DIR!, "control.sock"));
    let latest: DinvState | undefined;
    client.onstate = (st) => (latest = st);
    await client.request({ type: "subscribe" });
    const forwarded = (port: number) => !!latest?.forwards.some((f) => f.source === "auto" && f.port === port);
    const serve = "mkdir -p /www && echo ok > /www/small && exec httpd -f -p 80 -h /www";
    const publish: number[] = [];
    const unpublish: number[] = [];
    for (let i = 0; i < CONTAINERS; i++) {
      const port = await freePort();
      const run = docker(dinv.dockerHost, ["run", "-d", "--name", `pub${i}`, "-p", `${port}:80`, "dinv-test/busybox", "sh", "-c", serve]);
      if (run.code !== 0) throw new Error(run.stderr);
      // From `docker run -d` returning: first answer through the new forward.
      publish.push(await until(`http://127.0.0.1:${port}/small`, (b) => b === 3));
      const rm = docker(dinv.dockerHost, ["rm", "-f", `pub${i}`]);
      if (rm.code !== 0) throw new Error(rm.stderr);
      const t0 = performance.now();
      while (forwarded(port) && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 5));
      if (forwarded(port)) throw new Error(`the forward of ${port} stayed open`);
      unpublish.push(performance.now() - t0);
      log(`container ${i + 1}/${CONTAINERS}: published after ${Math.round(publish.at(-1)!)} ms, gone after ${Math.round(unpublish.at(-1)!)} ms`);
    }
    // One container behind both kinds of forward.
    const autoPort = await freePort();
    const script = `mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count=${BIG_MIB} 2>/dev/null && ${serve}`;
    const both = docker(dinv.dockerHost, ["run", "-d", "-p", `${autoPort}:80`, "-p", `${staticPort}:80`, "dinv-test/busybox", "sh", "-c", script]);
    if (both.code !== 0) throw new Error(both.stderr);
    await until(`http://127.0.0.1:${autoPort}/small`, (b) => b === 3);
    await until(`http://127.0.0.1:${staticPort}/small`, (b) => b === 3);
    const rates: Record<"auto" | "static", number[]> = { auto: [], static: [] };
    const small: Record<"auto" | "static", number[]> = { auto: [], static: [] };
    for (let i = 0; i < 3; i++) {
      for (const [kind, port] of [["auto", autoPort], ["static", staticPort]] as const) {
        const r = await get(`http://127.0.0.1:${port}/big`, 120_000);
        if (r.bytes !== BIG_MIB * 2 ** 20) throw new Error(`short transfer: ${r.bytes}`);
        rates[kind].push(BIG_MIB / (r.ms / 1000));
      }
    }
    for (let i = 0; i < 30; i++) for (const [kind, port] of [["auto", autoPort], ["static", staticPort]] as const) small[kind].push((await get(`http://127.0.0.1:${port}/small`, 5000)).ms);
    const mib = (k: "auto" | "static") => Number(median(rates[k]).toFixed(1));
    const ms = (k: "auto" | "static") => Number(median(small[k]).toFixed(1));
    client.close();
    return {
      publish: stats(publish),
      unpublish: stats(unpublish),
      auto: { throughput_mib_s: mib("auto"), latency_ms: ms("auto") },
      static: { throughput_mib_s: mib("static"), latency_ms: ms("static") },
      throughput_ratio: Number((mib("auto") / mib("static")).toFixed(2)),
    };
  } finally {
    await dinv.stop("SIGTERM").catch(() => undefined);
    await dinv.kill();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
  const r = await benchPublish((s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(table([
      ["", "median ms", "max ms"],
      [`publish (docker run -d -p returned -> first answer), ${CONTAINERS} containers`, r.publish.median_ms, r.publish.max_ms],
      ["unpublish (docker rm -f returned -> forward closed)", r.unpublish.median_ms, r.unpublish.max_ms],
    ]));
    console.log(table([
      ["forward", `GET ${BIG_MIB} MiB, MiB/s`, "GET small, ms"],
      ["automatic", r.auto.throughput_mib_s, r.auto.latency_ms],
      ["DINV_TCP_PORTS (baseline)", r.static.throughput_mib_s, r.static.latency_ms],
    ]));
    console.log(`throughput ratio automatic / static ${r.throughput_ratio}`);
  }
}
