// What every suite may import, unit tests included: the repository's root and a free loopback
// port. No VM, no process of dinv's.

import { createServer } from "node:net";
import { resolve } from "node:path";

export const REPO = resolve(import.meta.dirname, "../..");

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? res(address.port) : rej(new Error("no port"))));
    });
  });
}
