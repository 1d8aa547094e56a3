// The migration URIs a warm start uses, as the QEMU in use reads them. Pure.

/** A shell word (QEMU runs an exec: URI with /bin/sh -c). */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Where a save writes the state: file: since QEMU 8.2; before, through cat (7.2 has no file: URI). */
export const outgoingUri = (statePath: string, fileMigration: boolean) => (fileMigration ? `file:${statePath}` : `exec:cat > ${shellQuote(statePath)}`);

/**
 * The -incoming argument that reads a saved state: file: since QEMU 8.2, else the state open as
 * QEMU's fd 3 (no pipe, no cat: ~30 % faster than exec:cat on QEMU 7.2).
 */
export const incomingUri = (statePath: string, fileMigration: boolean) => (fileMigration ? `file:${statePath}` : "fd:3");
