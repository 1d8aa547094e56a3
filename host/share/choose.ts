// Which transport DINV_MOUNTS use: virtio-fs when virtiofsd can run here, else 9p. Pure.

import type { VirtiofsdFlavour } from "./virtiofsd.js";

export interface VirtiofsProbe {
  /** path of a virtiofsd binary, when one is installed and says which flavour it is */
  binary?: string;
  /** QEMU's C virtiofsd or the Rust one (their flags differ) */
  flavour?: VirtiofsdFlavour;
  /**
   * whether this process may call unshare(CLONE_FS), which virtiofsd's queue threads do; Docker's
   * default seccomp profile refuses it (dinv's image ships a profile that allows exactly that)
   */
  unshareFs: boolean;
}

export type ShareFsChoice =
  | { fs: "9p"; warning?: string }
  | { fs: "virtiofs"; binary: string; flavour: VirtiofsdFlavour }
  | { fs: "error"; message: string };

const HINT = "run the container with --security-opt seccomp=dinv-seccomp.json (see README, \"Faster mounts\")";

export function chooseShareFs(mode: "auto" | "virtiofs" | "9p", mounts: number, probe: VirtiofsProbe | undefined): ShareFsChoice {
  if (mode === "9p" || mounts === 0) return { fs: "9p" };
  const why = !probe?.binary || !probe.flavour ? "virtiofsd is not installed" : !probe.unshareFs ? "unshare(CLONE_FS) is refused here (seccomp)" : undefined;
  if (why === undefined) return { fs: "virtiofs", binary: probe!.binary!, flavour: probe!.flavour! };
  if (mode === "virtiofs") return { fs: "error", message: `DINV_MOUNTS_FS=virtiofs but ${why}; ${HINT}, or set DINV_MOUNTS_FS=auto` };
  return { fs: "9p", warning: `DINV_MOUNTS use 9p, not the faster virtio-fs: ${why}; ${HINT}` };
}
