// Port-forward throughput and request latency, launcher side -> guest container: QEMU's SLIRP
// hostfwd (what dinv uses) against passt (QEMU 7.2 -netdev stream), booted in the same run on the
// benchmark baseline guest (shell init + dockerd, bench/ready.ts) with the same kernel and root.
// passt is measured, not offered by `dinv run` yet: see the README's benchmark notes.
// Usage: node --import tsx bench/net.ts [--json] [--mib 64]

import { connect } from "node:net";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { execa } from "execa";
import { docker, importBusybox } from "../test/helpers/docker-cli.js";
import { freePort } from "../test/helpers/dinv-process.js";
import { bareQemu, median, ping, table, untilPing } from "./lib.js";

/** Send `bytes` to port and wait until the receiver closes; ms. */
function push(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(256 * 1024, 7);
    const t0 = Date.now();
    const socket = connect(port, "127.0.0.1");
    let sent = 0;
    const write = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once("drain", write);
      }
      socket.end();
    };
    socket.on("connect", write);
    socket.on("error", reject);
    socket.on("close", () => resolve(Date.now() - t0));
    socket.resume();
  });
}

async function measure(transport: "slirp" | "passt", mib: number, log: (s: string) => void) {
  const sink = await freePort();
  const netdev: string[] = [];
  let passt: ReturnType<typeof execa> | undefined;
  let socket = "";
  const vm = await bareQemu({ DINV_TCP_PORTS: String(sink), DINV_MEMORY: "1G" }, ["dinv.init=baseline"], (args, dir, apiPort) => {
    if (transport === "slirp") return args;
    socket = join(dir, "passt.sock");
    // The guest keeps SLIRP's static addressing; passt is told the same address and gateway.
    netdev.push("-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2", "-t", `127.0.0.1/${apiPort}:2375`, "-t", `127.0.0.1/${sink}:${sink}`);
    const i = args.indexOf("-netdev");
    const out = [...args];
    out[i + 1] = `stream,id=net0,server=off,addr.type=unix,addr.path=${socket}`;
    return out;
  }, async () => {
    if (transport === "slirp") return;
    passt = execa("passt", ["-f", "-q", "-s", socket, ...netdev], { reject: false, stdin: "ignore" });
    for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  });
  try {
    await untilPing(vm.port, vm.qemu.startedAt);
    const host = `tcp://127.0.0.1:${vm.port}`;
    importBusybox(host, "dinv-bench/tools");
    const run = docker(host, ["run", "-d", "-p", `${sink}:${sink}`, "dinv-bench/tools", "sh", "-c", `while true; do nc -l -p ${sink} > /dev/null; done`]);
    if (run.code !== 0) throw new Error(run.stderr);
    await new Promise((r) => setTimeout(r, 2000));
    await push(sink, 1024 * 1024); // warm-up: the listener is up and the path is set
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) runs.push(await push(sink, mib * 2 ** 20));
    const lat: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = process.hrtime.bigint();
      if (!(await ping(vm.port))) throw new Error("ping failed");
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const result = { transport, mib_s: Number((mib / (median(runs) / 1000)).toFixed(1)), ping_ms: Number(median(lat).toFixed(2)) };
    log(JSON.stringify(result));
    return result;
  } finally {
    vm.qemu.kill("SIGKILL");
    await vm.qemu.exited;
    passt?.kill("SIGTERM");
  }
}

export async function benchNet(mib: number, log: (s: string) => void) {
  const version = await execa("passt", ["--version"], { reject: false });
  const slirp = await measure("slirp", mib, log);
  if (version.exitCode !== 0) return { slirp, passt: null, net_ratio: null };
  const passt = await measure("passt", mib, log).catch((err: Error) => (log(`passt: ${err.message}`), null));
  return { slirp, passt, net_ratio: passt ? Number((passt.mib_s / slirp.mib_s).toFixed(2)) : null };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, mib: { type: "string", default: "64" } } });
  const r = await benchNet(Number(values.mib), (s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else console.log(table([["path", "MiB/s", "/_ping ms (median)"], ...[r.slirp, r.passt].filter((x) => x).map((x) => [x!.transport, x!.mib_s, x!.ping_ms]), ["passt / SLIRP", r.net_ratio ?? "-", ""]]));
}
