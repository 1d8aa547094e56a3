// Derive image/dinv-seccomp.json from Docker's default seccomp profile: the same rules plus one,
// unshare(CLONE_FS), which virtiofsd's worker threads call and Docker's default only allows with
// CAP_SYS_ADMIN. CLONE_FS creates no namespace and grants nothing: it only stops a thread sharing
// its cwd/umask with the others. Every other unshare flag stays refused.
// Usage: node image/make-seccomp.mjs DEFAULT.json > image/dinv-seccomp.json
// DEFAULT.json: profiles/seccomp/default.json of moby (Debian: golang-github-docker-docker-dev).
import { readFileSync } from "node:fs";

const CLONE_FS = 0x200;
const profile = JSON.parse(readFileSync(process.argv[2], "utf8"));
if (!Array.isArray(profile.syscalls) || profile.defaultAction !== "SCMP_ACT_ERRNO") {
  throw new Error(`${process.argv[2]} does not look like Docker's default seccomp profile`);
}
profile.syscalls.push({
  names: ["unshare"],
  action: "SCMP_ACT_ALLOW",
  args: [{ index: 0, value: CLONE_FS, valueTwo: 0, op: "SCMP_CMP_EQ" }],
  comment: "dinv: virtiofsd threads call unshare(CLONE_FS)",
  includes: {},
  excludes: {},
});
process.stdout.write(`${JSON.stringify(profile, null, "\t")}\n`);
