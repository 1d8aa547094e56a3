// Port-forward throughput and request latency, launcher side -> a container in the guest, for
// QEMU's SLIRP hostfwd against passt (DINV_NET=passt), each on its own boot in the same run.
// The server is busybox httpd in a container publishing the forwarded port (a streaming server:
// what a naive sender measures is the sender).
// Usage: node --import tsx bench/net.ts [--json]

import { parseArgs } from "node:util";
import { DinvProcess, freePort } from "../test/helpers/dinv-process.js";
import { docker, importBusybox } from "../test/helpers/docker-cli.js";
import { get, median, table } from "./lib.js";

const BIG_MIB = 64;


export interface NetResult {
  net: string;
  /** false when the variant could not run here (passt missing or refused) */
  ran: boolean;
  throughput_mib_s?: number;
  latency_ms?: number;
}

async function measure(net: "slirp" | "passt", log: (s: string) => void): Promise<NetResult> {
  const port = await freePort();
  const dinv = await DinvProcess.create({ DINV_NET: net, DINV_TCP_PORTS: String(port) });
  dinv.start();
  try {
    const state = await dinv.waitUntilSettled();
    if (state.phase !== "ready") throw new Error(dinv.tail());
    if (net === "passt" && !dinv.logs.some((l) => l.msg.includes("use passt"))) {
      log(`passt did not run here: ${dinv.logs.find((l) => l.msg.includes("DINV_NET=passt"))?.msg ?? "?"}`);
      return { net, ran: false };
    }
    importBusybox(dinv.dockerHost);
    const script = `mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count=${BIG_MIB} 2>/dev/null && echo ok > /www/small && exec httpd -f -p 8080 -h /www`;
    const run = docker(dinv.dockerHost, ["run", "-d", "-p", `${port}:8080`, "dinv-test/busybox", "sh", "-c", script]);
    if (run.code !== 0) throw new Error(run.stderr);
    const base = `http://127.0.0.1:${port}`;
    // The container needs a moment to write its file: bounded polling.
    for (let i = 0; ; i++) {
      if ((await get(`${base}/small`, 2000)).bytes === 3) break;
      if (i >= 120) throw new Error("the container's httpd never answered");
      await new Promise((r) => setTimeout(r, 500));
    }
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await get(`${base}/big`);
      if (r.bytes !== BIG_MIB * 2 ** 20) throw new Error(`short transfer: ${r.bytes} bytes`);
      rates.push(BIG_MIB / (r.ms / 1000));
    }
    const latencies: number[] = [];
    for (let i = 0; i < 30; i++) latencies.push((await get(`${base}/small`, 5000)).ms);
    const result = { net, ran: true, throughput_mib_s: Number(median(rates).toFixed(1)), latency_ms: Number(median(latencies).toFixed(1)) };
    log(JSON.stringify(result));
    return result;
  } finally {
    await dinv.stop("SIGTERM").catch(() => undefined);
    await dinv.kill();
  }
}

export async function benchNet(log: (s: string) => void) {
  const slirp = await measure("slirp", log);
  const passt = await measure("passt", log);
  const net_ratio = passt.ran ? Number((passt.throughput_mib_s! / slirp.throughput_mib_s!).toFixed(2)) : null;
  const latency_ratio = passt.ran ? Number((slirp.latency_ms! / passt.latency_ms!).toFixed(2)) : null;
  return { slirp, passt, net_ratio, latency_ratio };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
  const r = await benchNet((s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(table([
      ["path", `GET ${BIG_MIB} MiB, MiB/s (median of 3)`, "GET small, ms (median of 30)"],
      ["SLIRP hostfwd (baseline)", r.slirp.throughput_mib_s ?? "-", r.slirp.latency_ms ?? "-"],
      ["passt", r.passt.ran ? r.passt.throughput_mib_s! : "did not run", r.passt.ran ? r.passt.latency_ms! : "-"],
    ]));
    console.log(`net_ratio ${r.net_ratio} (throughput passt / SLIRP), latency ratio ${r.latency_ratio} (SLIRP / passt)`);
  }
}
