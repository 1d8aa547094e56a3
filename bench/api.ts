// Docker API throughput: `docker import` of a ~100 MB tarball through the docker API path dinv
// offers, over SLIRP hostfwd (the baseline) and over passt (DINV_NET=passt), each on its own boot
// in the same run; also the launcher-side read of the same bytes (the ceiling of any forward).
// Usage: node --import tsx bench/api.ts [--json]

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { DinvProcess } from "../test/helpers/dinv-process.js";
import { table } from "./lib.js";

export async function benchApi(log: (s: string) => void) {
  // An image of ~100 MB of incompressible data, as a docker-import tarball.
  const root = mkdtempSync(join(tmpdir(), "dinv-bench-img-"));
  mkdirSync(join(root, "data"));
  for (let i = 0; i < 10; i++) writeFileSync(join(root, "data", `blob${i}`), randomBytes(10 * 2 ** 20));
  const tar = join(tmpdir(), `dinv-bench-${process.pid}.tar`);
  execFileSync("tar", ["-C", root, "-cf", tar, "."]);
  const bytes = Number(execFileSync("stat", ["-c", "%s", tar]).toString());
  const t0 = Date.now();
  execFileSync("sh", ["-c", `cat ${tar} > /dev/null`]);
  const localMs = Math.max(1, Date.now() - t0);

  const mib = bytes / 2 ** 20;
  const importVia = async (net: "slirp" | "passt"): Promise<number | null> => {
    const dinv = await DinvProcess.create({ DINV_NET: net });
    dinv.start();
    try {
      const state = await dinv.waitUntilSettled();
      if (state.phase !== "ready") throw new Error(dinv.tail());
      if (net === "passt" && !dinv.logs.some((l) => l.msg.includes("use passt"))) return null;
      const t1 = Date.now();
      const r = spawnSync("sh", ["-c", `docker import ${tar} dinv-bench/blob`], { env: { ...process.env, DOCKER_HOST: dinv.dockerHost }, encoding: "utf8" });
      if (r.status !== 0) throw new Error(r.stderr);
      return Number((mib / ((Date.now() - t1) / 1000)).toFixed(1));
    } finally {
      await dinv.stop("SIGTERM").catch(() => undefined);
      await dinv.kill();
    }
  };
  const slirp = await importVia("slirp");
  const passt = await importVia("passt");
  const result = {
    payload_mib: Math.round(mib),
    slirp_import_mib_s: slirp!,
    passt_import_mib_s: passt,
    passt_ratio: passt === null ? null : Number((passt / slirp!).toFixed(2)),
    local_read_mib_s: Number((mib / (localMs / 1000)).toFixed(0)),
  };
  log(JSON.stringify(result));
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
  const r = await benchApi((s) => console.error(s));
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(table([
      ["path", "MiB/s"],
      ["docker import via SLIRP hostfwd (baseline; dockerd in the guest writes it)", r.slirp_import_mib_s],
      ["docker import via passt", r.passt_import_mib_s ?? "did not run"],
      ["reading the same file locally (ceiling)", r.local_read_mib_s],
    ]));
    console.log(`passt / SLIRP: ${r.passt_ratio}`);
  }
}
