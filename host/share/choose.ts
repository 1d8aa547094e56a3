// Which transport DINV_MOUNTS use: virtio-fs where virtiofsd can run here and keeps the guest's root
// from owning files on the host (the Rust one, which maps it to nobody), else 9p with its mapped
// security model. Pure.

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
  | { fs: "virtiofs"; binary: string; flavour: VirtiofsdFlavour; warning?: string }
  | { fs: "error"; message: string };

const HINT = "run the container with --security-opt seccomp=dinv-seccomp.json (see README, \"Faster mounts\")";

export function chooseShareFs(mode: "auto" | "virtiofs" | "9p", mounts: number, probe: VirtiofsProbe | undefined): ShareFsChoice {
  if (mode === "9p" || mounts === 0) return { fs: "9p" };
  const why = !probe?.binary || !probe.flavour ? "virtiofsd is not installed" : !probe.unshareFs ? "unshare(CLONE_FS) is refused here (seccomp)" : undefined;
  // QEMU's C virtiofsd (Debian 12) has no uid mapping: the guest's root would own (and set setuid bits on) host files.
  const unsafe = probe?.flavour === "c" ? "this host's virtiofsd (QEMU's C daemon) lets the guest's root own files and set setuid bits on the host" : undefined;
  if (why === undefined && unsafe && mode === "virtiofs") {
    return { fs: "virtiofs", binary: probe!.binary!, flavour: probe!.flavour!, warning: `WARNING: DINV_MOUNTS_FS=virtiofs: ${unsafe}; DINV_MOUNTS_FS=auto uses 9p's mapped security model instead` };
  }
  if (why === undefined && unsafe) return { fs: "9p", warning: `DINV_MOUNTS use 9p (mapped security model), not virtio-fs: ${unsafe}; the Rust virtiofsd (the image's) maps it to nobody` };
  if (why === undefined) return { fs: "virtiofs", binary: probe!.binary!, flavour: probe!.flavour! };
  if (mode === "virtiofs") return { fs: "error", message: `DINV_MOUNTS_FS=virtiofs but ${why}; ${HINT}, or set DINV_MOUNTS_FS=auto` };
  return { fs: "9p", warning: `DINV_MOUNTS use 9p, not the faster virtio-fs: ${why}; ${HINT}` };
}
