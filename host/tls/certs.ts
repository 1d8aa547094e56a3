// TLS material for the docker API, laid out as docker:dind does under DOCKER_TLS_CERTDIR:
// ca/ (kept on the launcher side), server/ (sent to the guest's dockerd), client/ (for users).
// Files that exist are reused, never overwritten; missing ones are generated with openssl.

import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";

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

const exists = (path: string) => stat(path).then(() => true, () => false);

async function openssl(args: string[]): Promise<void> {
  const result = await execa("openssl", args, { reject: false, stdin: "ignore" });
  if (result.exitCode !== 0) {
    throw new TlsError(`openssl ${args[0]} failed (${result.exitCode ?? result.signal}): ${String(result.stderr).trim().slice(0, 400)}`);
  }
}

/** An EC P-256 key: fast to generate, accepted by Go's TLS stack (dockerd) and Node. */
const newKey = (path: string) => openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path]);

const serial = () => `0x${randomBytes(16).toString("hex").replace(/^[89a-f]/, "1")}`;

async function ensureCa(dir: string): Promise<void> {
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  if (await exists(cert)) return;
  if (!(await exists(key))) await newKey(key);
  await chmod(key, 0o600);
  await openssl([
    "req", "-new", "-x509", "-key", key, "-out", cert, "-days", String(DAYS), "-subj", "/CN=dinv docker API CA", "-set_serial", serial(),
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

async function ensureLeaf(caDir: string, dir: string, side: "server" | "client", sans: string[]): Promise<void> {
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  await writeFile(join(dir, "ca.pem"), await readFile(join(caDir, "cert.pem")));
  if (await exists(cert)) return;
  if (!(await exists(key))) await newKey(key);
  await chmod(key, 0o600);
  const csr = join(dir, "csr.pem");
  const ext = join(dir, "openssl.cnf");
  await openssl(["req", "-new", "-key", key, "-out", csr, "-subj", `/CN=dinv docker API ${side}`]);
  await writeFile(ext, leafExtensions(side, sans));
  await openssl([
    "x509", "-req", "-in", csr, "-CA", join(caDir, "cert.pem"), "-CAkey", join(caDir, "key.pem"), "-set_serial", serial(),
    "-days", String(DAYS), "-extfile", ext, "-out", cert,
  ]);
  await rm(csr, { force: true });
  await rm(ext, { force: true });
}

/**
 * Make sure certDir holds a CA, a server and a client certificate; return them. The client key
 * is owned by the docker socket's owner (group-readable) since it grants the same access.
 */
export async function ensureTlsMaterial(
  certDir: string,
  options: { sans: string[]; clientOwner: { uid: number; gid: number } },
): Promise<TlsMaterial> {
  const dirs = { ca: join(certDir, "ca"), server: join(certDir, "server"), client: join(certDir, "client") };
  try {
    await mkdir(certDir, { recursive: true, mode: 0o755 });
    await mkdir(dirs.ca, { recursive: true, mode: 0o700 });
    await mkdir(dirs.server, { recursive: true, mode: 0o700 });
    await mkdir(dirs.client, { recursive: true, mode: 0o755 });
    await ensureCa(dirs.ca);
    await ensureLeaf(dirs.ca, dirs.server, "server", options.sans);
    await ensureLeaf(dirs.ca, dirs.client, "client", []);
    const clientKey = join(dirs.client, "key.pem");
    if (process.getuid?.() === 0) await chown(clientKey, options.clientOwner.uid, options.clientOwner.gid);
    await chmod(clientKey, 0o640);
    const read = (dir: string, name: string) => readFile(join(dir, name), "utf8");
    return {
      caPem: await read(dirs.ca, "cert.pem"),
      server: { certPem: await read(dirs.server, "cert.pem"), keyPem: await read(dirs.server, "key.pem") },
      client: { certPem: await read(dirs.client, "cert.pem"), keyPem: await read(dirs.client, "key.pem") },
      clientDir: dirs.client,
    };
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError(`cannot prepare TLS certificates in DOCKER_TLS_CERTDIR=${certDir}: ${(err as Error).message}`);
  }
}
