// Whether a path exists (a link counts as itself, not its target). For the launcher's own files
// only: a shared directory's entries go through host/fs/shared-dir.ts.

import { lstat } from "node:fs/promises";

export const exists = (path: string): Promise<boolean> => lstat(path).then(() => true, () => false);
