// What QEMU is started with, as the run learns it: the share transport and network the side
// services settled on, the kernel and root image once unpacked, and the initramfs with the early
// start's boot files once made. QEMU's plan for a start is computed from these (qemu-plan.ts).

import type { GuestConfig } from "../../shared/protocol/guest-config.js";
import { bootInitrd } from "../boot/initrd.js";
import type { Logger } from "../log.js";
import type { QemuPlan } from "../qemu/args.js";
import type { Prepared } from "./prepare.js";
import { qemuPlan } from "./qemu-plan.js";

export class VmInputs {
  shareFs: "9p" | "virtiofs";
  net: QemuPlan["net"] = { kind: "slirp" };
  kernel: string;
  rootImage: string;
  /** the docker disk from the cache (DINV_CACHE_DIR), when the run takes one */
  cacheDisk: { disk: string; backing: string | undefined } | undefined;
  private initrd: string;
  private initrdMade = false;

  constructor(private readonly p: Prepared) {
    this.shareFs = p.shareChoice.fs === "virtiofs" ? "virtiofs" : "9p";
    this.kernel = p.pre.guest.kernel;
    this.rootImage = p.pre.guest.rootImage;
    this.initrd = p.pre.guest.initrd;
  }

  /** The guest init may start dockerd before the agent (the boot files are in the initramfs). */
  get earlyStart(): boolean {
    return this.initrd !== this.p.pre.guest.initrd;
  }

  /** The initramfs with the early start's boot files appended, made once (a boot needs it; a restore does not). */
  async makeBootInitrd(guestConfig: GuestConfig, log: Logger): Promise<void> {
    if (this.initrdMade) return;
    this.initrdMade = true;
    this.initrd = await bootInitrd(this.p.pre.guest.initrd, this.p.config.runDir, guestConfig, this.p.config.earlyStart, log);
  }

  /** QEMU's plan for an accelerator, from the facts of the moment. */
  plan(accel: "kvm" | "tcg", withholdDockerForward: boolean): QemuPlan {
    return qemuPlan(this.p, { kernel: this.kernel, rootImage: this.rootImage, initrd: this.initrd, shareFs: this.shareFs, net: this.net, withholdDockerForward, ...(this.cacheDisk ? { cacheDisk: this.cacheDisk } : {}) }, accel);
  }
}
