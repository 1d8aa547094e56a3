// The migration URIs a warm start uses, as QEMU reads them. Pure.

/** A shell word (QEMU runs an exec: URI with /bin/sh -c). */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Where a save writes the state: QEMU 7.2 has no file: URI, so through cat. */
export const outgoingUri = (statePath: string) => `exec:cat > ${shellQuote(statePath)}`;

/** The -incoming argument that reads a saved state QEMU inherits as its fd 3 (no pipe, no cat: ~30 % faster). */
export const INCOMING_FD3 = "fd:3";
