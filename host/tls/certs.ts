// TLS material for the docker API, laid out as docker:dind does under DOCKER_TLS_CERTDIR:
// ca/ (kept on the launcher side), server/ (sent to the guest's dockerd), client/ (for users).
// Files that exist are reused, never overwritten; missing ones are generated with openssl.

import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { SharedDir } from "../fs/shared-dir.js";

export interface TlsMaterial {
  /** PEM of the CA that signed both sides */
  caPem: string;
  server: { certPem: string; keyPem: string };
  client: { certPem: string; keyPem: string };
  /** directory holding ca.pem, cert.pem and key.pem for a docker client (DOCKER_CERT_PATH) */
  clientDir: string;
}

export class TlsError extends Error {}

/** Validity of generated certificates, days (the 825-day ceiling clients accept for leaf certs). */
const DAYS = 825;

/**
 * subjectAltName entries of the server certificate: names and addresses a client may dial the
 * forward by. Deduplicated, IPv4 only (the forwards are IPv4). Pure.
 */
export function serverSans(hostname: string, addresses: string[]): string[] {
  const names = ["localhost", hostname].filter((n) => /^[A-Za-z0-9.-]{1,253}$/.test(n));
  const ips = ["127.0.0.1", ...addresses].filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a) && a !== "0.0.0.0");
  return [...new Set(names)].map((n) => `DNS:${n}`).concat([...new Set(ips)].map((a) => `IP:${a}`));
}

/** openssl x509 extension file of a leaf certificate for one side. Pure. */
export function leafExtensions(side: "server" | "client", sans: string[]): string {
  return [
    "basicConstraints = critical,CA:FALSE",
    "keyUsage = critical,digitalSignature",
    `extendedKeyUsage = ${side === "server" ? "serverAuth" : "clientAuth"}`,
    ...(side === "server" ? [`subjectAltName = ${sans.join(",")}`] : []),
    "",
  ].join("\n");
}

/** Largest PEM file read from the certificate directory, bytes: a planted giant file is refused. */
const MAX_PEM_BYTES = 64 * 1024;

async function openssl(args: string[]): Promise<void> {
  const result = await execa("openssl", args, { reject: false, stdin: "ignore" });
  if (result.exitCode !== 0) {
    throw new TlsError(`openssl ${args[0]} failed (${result.exitCode ?? result.signal}): ${String(result.stderr).trim().slice(0, 400)}`);
  }
}

/**
 * openssl works only in a private scratch directory: it writes by path, following links. What it
 * makes goes into the certificate directory through SharedDir (the client directory is shared with
 * the job's containers, as docker:dind's is).
 */
class Scratch {
  private constructor(readonly dir: string) {}
  static async make(): Promise<Scratch> {
    return new Scratch(await mkdtemp(join(tmpdir(), "dinv-tls-")));
  }
  path = (name: string) => join(this.dir, name);
  read = (name: string) => readFile(this.path(name), "utf8");
  async write(name: string, text: string): Promise<void> {
    await writeFile(this.path(name), text, { mode: 0o600 });
  }
  async newKey(name: string): Promise<string> {
    // An EC P-256 key: fast to generate, accepted by Go's TLS stack (dockerd) and Node.
    await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", this.path(name)]);
    return this.read(name);
  }
  remove = () => rm(this.dir, { recursive: true, force: true });
}

const serial = () => `0x${randomBytes(16).toString("hex").replace(/^[89a-f]/, "1")}`;

/** A PEM file of the certificate directory, read through a checked descriptor (another user's file allowed: the client key is the socket owner's). */
const readPem = (dir: SharedDir, name: string) => dir.readText(name, MAX_PEM_BYTES, false);

async function ensureCa(ca: SharedDir, scratch: Scratch): Promise<{ certPem: string; keyPem: string }> {
  const certPem = await readPem(ca, "cert.pem");
  let keyPem = await readPem(ca, "key.pem");
  if (certPem && keyPem) return { certPem, keyPem };
  if (!keyPem) {
    keyPem = await scratch.newKey("ca-key.pem");
    await ca.writeAtomic("key.pem", keyPem, 0o600);
  } else await scratch.write("ca-key.pem", keyPem);
  await openssl([
    "req", "-new", "-x509", "-key", scratch.path("ca-key.pem"), "-out", scratch.path("ca.pem"), "-days", String(DAYS), "-subj", "/CN=dinv docker API CA", "-set_serial", serial(),
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const made = await scratch.read("ca.pem");
  await ca.writeAtomic("cert.pem", made, 0o644);
  return { certPem: made, keyPem };
}

async function ensureLeaf(
  ca: { certPem: string; keyPem: string },
  dir: SharedDir,
  side: "server" | "client",
  sans: string[],
  scratch: Scratch,
  keyOwner?: { uid: number; gid: number },
): Promise<{ certPem: string; keyPem: string }> {
  await dir.writeAtomic("ca.pem", ca.certPem, 0o644);
  const keyMode = side === "client" ? 0o640 : 0o600;
  // The key is written whole (mode and owner set on its descriptor before it is renamed into place):
  // nothing in the directory is chmod-ed or chown-ed by path.
  const writeKey = (pem: string) =>
    dir.fill("key.pem", keyMode, async (handle) => {
      await handle.writeFile(pem);
      if (keyOwner && process.getuid?.() === 0) await handle.chown(keyOwner.uid, keyOwner.gid);
      await handle.chmod(keyMode);
    });
  const certPem = await readPem(dir, "cert.pem");
  let keyPem = await readPem(dir, "key.pem");
  if (certPem && keyPem) {
    // Re-written as it is, so its owner and mode are this run's socket owner's.
    if (keyOwner) await writeKey(keyPem);
    return { certPem, keyPem };
  }
  keyPem ??= await scratch.newKey(`${side}-key.pem`);
  await scratch.write(`${side}-key.pem`, keyPem);
  await scratch.write("ca-cert.pem", ca.certPem);
  await scratch.write("ca-key.pem", ca.keyPem);
  await scratch.write(`${side}.cnf`, leafExtensions(side, sans));
  await openssl(["req", "-new", "-key", scratch.path(`${side}-key.pem`), "-out", scratch.path(`${side}.csr`), "-subj", `/CN=dinv docker API ${side}`]);
  await openssl([
    "x509", "-req", "-in", scratch.path(`${side}.csr`), "-CA", scratch.path("ca-cert.pem"), "-CAkey", scratch.path("ca-key.pem"), "-set_serial", serial(),
    "-days", String(DAYS), "-extfile", scratch.path(`${side}.cnf`), "-out", scratch.path(`${side}-cert.pem`),
  ]);
  const made = await scratch.read(`${side}-cert.pem`);
  await writeKey(keyPem);
  await dir.writeAtomic("cert.pem", made, 0o644);
  return { certPem: made, keyPem };
}

/**
 * Make sure certDir holds a CA, a server and a client certificate; return them. The client key
 * is owned by the docker socket's owner (group-readable) since it grants the same access. No
 * entry of certDir is followed if it is a link (SharedDir): a job that mounts client/ read-write
 * cannot point the launcher's writes anywhere else.
 */
export async function ensureTlsMaterial(
  certDir: string,
  options: { sans: string[]; clientOwner: { uid: number; gid: number } },
): Promise<TlsMaterial> {
  const opened: SharedDir[] = [];
  const scratch = await Scratch.make();
  try {
    const top = await SharedDir.open(certDir, { create: true, mode: 0o755 });
    opened.push(top);
    const sub = async (name: string, mode: number) => {
      const d = await top.subdir(name, { create: true, mode });
      opened.push(d);
      return d;
    };
    const ca = await ensureCa(await sub("ca", 0o700), scratch);
    const server = await ensureLeaf(ca, await sub("server", 0o700), "server", options.sans, scratch);
    const client = await ensureLeaf(ca, await sub("client", 0o755), "client", [], scratch, options.clientOwner);
    return { caPem: ca.certPem, server, client, clientDir: join(certDir, "client") };
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError(`cannot prepare TLS certificates in DOCKER_TLS_CERTDIR=${certDir}: ${(err as Error).message}`);
  } finally {
    for (const d of opened) await d.close();
    await scratch.remove();
  }
}
