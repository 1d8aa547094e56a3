// Derive image/dinv-seccomp.json from Docker's default seccomp profile: the same rules plus one,
// unshare(CLONE_FS), which virtiofsd's worker threads call and Docker's default only allows with
// CAP_SYS_ADMIN. CLONE_FS creates no namespace and grants nothing: it only stops a thread sharing
// its cwd/umask with the others. Every other unshare flag stays refused.
// Usage: node image/make-seccomp.mjs DEFAULT.json > image/dinv-seccomp.json
// DEFAULT.json: profiles/seccomp/default.json of the guest's Docker (Debian 13's
// golang-github-docker-docker-dev 26.1.5: /usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const CLONE_FS = 0x200;

/** The rule dinv adds. */
export const DINV_RULE = {
  names: ["unshare"],
  action: "SCMP_ACT_ALLOW",
  args: [{ index: 0, value: CLONE_FS, valueTwo: 0, op: "SCMP_CMP_EQ" }],
  comment: "dinv: virtiofsd threads call unshare(CLONE_FS)",
  includes: {},
  excludes: {},
};

/** Docker's profile plus DINV_RULE; throws on anything that is not a default-deny profile. Pure. */
export function deriveProfile(profile) {
  if (!Array.isArray(profile?.syscalls) || profile.defaultAction !== "SCMP_ACT_ERRNO") {
    throw new Error("not Docker's default seccomp profile (a default-deny profile with a syscalls list)");
  }
  return { ...profile, syscalls: [...profile.syscalls.filter((r) => r.comment !== DINV_RULE.comment), DINV_RULE] };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const profile = JSON.parse(readFileSync(process.argv[2], "utf8"));
  process.stdout.write(`${JSON.stringify(deriveProfile(profile), null, "\t")}\n`);
}
