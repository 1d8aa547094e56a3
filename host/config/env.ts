// Launcher configuration from the environment: every DINV_* variable parsed by one zod schema
// before any side effect. Errors name the variable, its value and what is allowed. Pure.

import { z } from "zod";
import { DEFAULT_BIP, GUEST_DOCKER_PORT, GUEST_DOCKER_ROOT, GUEST_DOCKER_TLS_PORT } from "../../shared/constants.js";
import { checkPath, normalisePath, parsePathList, parsePortRanges } from "./lists.js";
import { daemonJson, dir, fail, GiB, int, ipv4, LAUNCHER_DIR, list, LOG_LEVELS, MAX_UID, MiB, optionalPort, overlaps, ports, RESERVED_DAEMON_KEYS, size, text } from "./fields.js";
export { LAUNCHER_DIR, LOG_LEVELS, overlaps, RESERVED_DAEMON_KEYS } from "./fields.js";
import { DISK_FILES, runDirTooLong } from "../run/run-files.js";
import { CACHE_KEY_ALLOWED, DEFAULT_CACHE_KEY } from "../cache/key.js";
import { cacheVariables } from "./cache-variables.js";

/** The directories' defaults, as the original DinV and the container image have them. */
export const DEFAULT_DIRS = { docker: "/docker", volume: "/volume", run: "/run/dinv", warm: "/var/cache/dinv" } as const;

/** One directory variable alone, parsed as `dinv run` parses it (the CLI's commands need only it); throws ConfigError. */
export function dirVariable(env: Record<string, string | undefined>, name: "DINV_RUN_DIR" | "DINV_WARM_DIR"): string {
  const parsed = dir(name === "DINV_RUN_DIR" ? DEFAULT_DIRS.run : DEFAULT_DIRS.warm).safeParse(env[name]);
  if (parsed.success) return parsed.data;
  throw new ConfigError([`${name}=${JSON.stringify(env[name])}: ${parsed.error.issues[0]?.message ?? "invalid"}. Allowed: ${ALLOWED[name]}`]);
}

/** What each variable accepts, quoted in errors and in `dinv run --help`. */
export const ALLOWED: Record<string, string> = {
  DINV_CPUS: "a whole number of vCPUs from 1 to 64 (default 1)",
  DINV_MEMORY: "a size from 128M to 1T such as 512M or 2G; a bare number is MiB (default 512M)",
  DINV_TCP_PORTS: "';'-separated TCP ports 1-65535 or ranges like 8000-8010, each once (default none)",
  DINV_UDP_PORTS: "';'-separated UDP ports 1-65535 or ranges like 8000-8010, each once (default none)",
  DINV_MOUNTS: "';'-separated absolute paths of existing directories (default none)",
  DINV_DOCKER_SIZE: "a size from 1G to 64T such as 64G (default 64G)",
  DINV_VOLUME_PATH: "an absolute guest path for the extra volume disk, not / or under /var/lib/docker (default none)",
  DINV_VOLUME_SIZE: "a size from 16M to 64T such as 10G (default 64G)",
  DINV_VOLUME_UID: "a uid from 0 to 4294967294 (default 0)",
  DINV_VOLUME_GID: "a gid from 0 to 4294967294 (default 0)",
  DINV_DOCKER_SOCK_UID: "a uid from 0 to 4294967294 (default 0)",
  DINV_DOCKER_SOCK_GID: "a gid from 0 to 4294967294 (default 0)",
  DINV_SHUTDOWN_TIMEOUT: "whole seconds from 0 to 3600 (default 5)",
  DINV_MACHINE: "microvm or q35 (default microvm)",
  DINV_ACCEL: "auto, kvm or tcg (default auto: KVM when usable, else TCG)",
  DINV_DOCKER_DIR: `an absolute directory for ${DISK_FILES.docker} (default ${DEFAULT_DIRS.docker})`,
  DINV_VOLUME_DIR: `an absolute directory for ${DISK_FILES.volume} (default ${DEFAULT_DIRS.volume})`,
  DINV_RUN_DIR: `an absolute directory for sockets and pid files (default ${DEFAULT_DIRS.run})`,
  DINV_GUEST_DIR: "an absolute directory holding vmlinux (or vmlinuz), initramfs.cpio and rootfs.img (or rootfs.img.zst)",
  DINV_DOCKER_PORT: "a TCP port 1-65535 for the docker API forward (default 2375, or 2376 with DOCKER_TLS_CERTDIR)",
  DOCKER_TLS_CERTDIR: "an absolute directory for the TLS certificates of the docker API, as in docker:dind (default empty: plain API on 2375)",
  DINV_BIND_ADDR: "an IPv4 address the forwards listen on (default 127.0.0.1)",
  DINV_DOCKER_SOCK: "an absolute path where the launcher serves a docker.sock reaching the guest's dockerd (default none; the image sets /var/run/docker.sock)",
  DINV_BIP: "the guest docker bridge as address/prefix, e.g. 172.19.0.1/16 (default 172.19.0.1/16)",
  DINV_CONTROL_GID: "a gid that may use the control socket DINV_RUN_DIR/control.sock (mode 0660; default: the launcher's group)",
  DINV_CONTROL_PORT: "a TCP port on 127.0.0.1 where the control API also listens (default none)",
  DINV_NET: "slirp or passt: the guest's user-mode network and port forwards (default slirp; passt is faster and needs unshare, see the README)",
  DINV_EARLY_START: "on or off: the guest init starts dockerd before the agent is up, when nothing must be mounted first (default on)",
  DINV_GUEST_ASLR: "auto, on or off: address-space randomisation of the guest's processes (default auto: off under TCG, where it makes every exec ~3x dearer; on under KVM)",
  DINV_MOUNTS_FS: "auto, virtiofs or 9p: how DINV_MOUNTS reach the guest (default auto: virtio-fs when virtiofsd can run, else 9p)",
  DINV_9P_OPTIONS: "extra 9p mount options for DINV_MOUNTS, comma-separated, from msize, cache, access, posixacl, noatime (default msize=512000,cache=mmap; \"none\" for the kernel defaults)",
  DINV_PUBLISH: "auto or off: forward the ports the guest's containers publish (docker run -p) to the launcher side by themselves (default auto)",
  DINV_PUBLISH_PORTS: "';'-separated ports or ranges the guest may publish automatically, e.g. 1024-65535 (default 1-65535; the launcher's own ports are never published)",
  DINV_LOG_LEVEL: "trace, debug, info, warn, error or silent (default info; debug shows dockerd's own lines and QEMU's command line)",
  DINV_LOG_FORMAT: "json or pretty (default: pretty on a terminal, json otherwise; the image sets pretty)",
  DINV_9P_SECURITY: "mapped or none: how 9p shares keep the guest's owners and modes (default mapped: in xattrs, files on the launcher side are 0644/0755 and owned by the launcher's user, so the guest can plant no setuid binary or device node; none, the original's: passed through, trusting the guest)",
  DINV_DOCKERD_CONFIG: `a JSON object of daemon.json keys, without the keys dinv sets itself (${RESERVED_DAEMON_KEYS.join(", ")}) (default {})`,
  DINV_WARM_START: "auto or off: restore a saved, ready VM instead of booting when DINV_WARM_DIR holds one of this shape, and save one after a cold boot (default auto)",
  DINV_WARM_DIR: `an absolute directory for saved VM states; warm starts happen only when it exists, e.g. as a volume (default ${DEFAULT_DIRS.warm})`,
  DINV_REGISTRY_MIRRORS: "';'-separated http(s):// URLs of registry mirrors (default none)",
  DINV_INSECURE_REGISTRIES: "';'-separated registries (host[:port] or CIDR) dockerd may reach without TLS (default none)",
  DINV_CACHE_DIR: "an absolute directory shared by runners for docker-disk generations, e.g. a volume (default none: no cache)",
  DINV_CACHE_KEY: `the cache a job belongs to: ${CACHE_KEY_ALLOWED}, e.g. project/branch (default ${DEFAULT_CACHE_KEY})`,
  DINV_CACHE_RESTORE_KEYS: `';'-separated keys tried in order when DINV_CACHE_KEY has no generation yet, each ${CACHE_KEY_ALLOWED} (default none)`,
  DINV_CACHE_SAVE: "on-stop or off: promote the job's docker disk to its key's next generation on a clean stop (default on-stop; off: use a cache, never write one)",
  DINV_CACHE_MAX: "a size from 1G to 64T such as 20G: the cache directory's bound, the least recently used keys go first (default 20G)",
};

/** The docker API forward's port: DINV_DOCKER_PORT, else docker's conventional 2375 plain / 2376 TLS. */
const dockerPortOf = (env: { DINV_DOCKER_PORT: number | undefined; DOCKER_TLS_CERTDIR: string | undefined }) =>
  env.DINV_DOCKER_PORT ?? (env.DOCKER_TLS_CERTDIR ? GUEST_DOCKER_TLS_PORT : GUEST_DOCKER_PORT);


/** The original DinV's variables, with its names and defaults. */
const originalVariables = {
  DINV_CPUS: int("1", 1, 64),
  DINV_MEMORY: size("512M", 128 * MiB, 1024 * GiB, "M"),
  DINV_TCP_PORTS: ports,
  DINV_UDP_PORTS: ports,
  DINV_MOUNTS: text("").transform((s, ctx) => {
    const result = parsePathList(s);
    return result.ok ? result.value : fail(ctx, result.reason);
  }),
  DINV_DOCKER_SIZE: size("64G", GiB, 64 * 1024 * GiB, ""),
  DINV_VOLUME_PATH: text("").transform((s, ctx) => {
    if (!s) return undefined;
    const reason = checkPath(s);
    if (reason) return fail(ctx, reason);
    const path = normalisePath(s);
    if (overlaps(path, GUEST_DOCKER_ROOT)) return fail(ctx, `overlaps docker's data root ${GUEST_DOCKER_ROOT}`);
    if (/^\/(proc|sys|dev|run|etc|usr|bin|sbin|lib|boot)(\/|$)/.test(path)) return fail(ctx, "is a system directory of the guest");
    return path;
  }),
  DINV_VOLUME_SIZE: size("64G", 16 * MiB, 64 * 1024 * GiB, ""),
  DINV_VOLUME_UID: int("0", 0, MAX_UID),
  DINV_VOLUME_GID: int("0", 0, MAX_UID),
  DINV_DOCKER_SOCK_UID: int("0", 0, MAX_UID),
  DINV_DOCKER_SOCK_GID: int("0", 0, MAX_UID),
  DINV_SHUTDOWN_TIMEOUT: int("5", 0, 3600),
  DINV_MACHINE: text("microvm").pipe(z.enum(["microvm", "q35"], { message: "unknown machine type" })),
};

/** The cache variables alone, as `dinv run` parses them; throws ConfigError. */
export function parseCacheEnv(env: Record<string, string | undefined>) {
  const parsed = z.object(cacheVariables).safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${String(i.path[0])}=${JSON.stringify(env[String(i.path[0])])}: ${i.message}. Allowed: ${ALLOWED[String(i.path[0])]}`));
  const v = parsed.data;
  return v.DINV_CACHE_DIR ? { dir: v.DINV_CACHE_DIR, key: v.DINV_CACHE_KEY, restoreKeys: v.DINV_CACHE_RESTORE_KEYS, save: v.DINV_CACHE_SAVE, maxBytes: v.DINV_CACHE_MAX } : undefined;
}

/** dinv's own variables. */
function dinvVariables(defaults: { guestDir: string }) {
  return {
    DINV_ACCEL: text("auto").pipe(z.enum(["auto", "kvm", "tcg"], { message: "unknown accelerator" })),
    DINV_DOCKER_DIR: dir(DEFAULT_DIRS.docker),
    DINV_VOLUME_DIR: dir(DEFAULT_DIRS.volume),
    DINV_RUN_DIR: dir(DEFAULT_DIRS.run).transform((s, ctx) => {
      const reason = runDirTooLong(s);
      return reason ? fail(ctx, reason) : s;
    }),
    DINV_GUEST_DIR: dir(defaults.guestDir),
    DINV_DOCKER_PORT: optionalPort,
    // Same name and meaning as in docker:dind: set = TLS on 2376 with certificates generated there.
    DOCKER_TLS_CERTDIR: text("").transform((s, ctx) => {
      if (!s) return undefined;
      const reason = checkPath(s);
      return reason ? fail(ctx, reason) : normalisePath(s);
    }),
    DINV_BIND_ADDR: text("127.0.0.1").pipe(z.string().regex(ipv4, "not an IPv4 address")),
    DINV_DOCKER_SOCK: text("").transform((s, ctx) => {
      if (!s) return undefined;
      const reason = checkPath(s);
      return reason ? fail(ctx, reason) : normalisePath(s);
    }),
    DINV_CONTROL_GID: text("").transform((s, ctx) => {
      if (!s) return undefined;
      return /^\d+$/.test(s) && Number(s) <= MAX_UID ? Number(s) : fail(ctx, "not a gid");
    }),
    DINV_CONTROL_PORT: optionalPort,
    DINV_NET: text("slirp").pipe(z.enum(["slirp", "passt"], { message: "unknown network" })),
    DINV_EARLY_START: text("on").pipe(z.enum(["on", "off"], { message: "must be on or off" })),
    DINV_GUEST_ASLR: text("auto").pipe(z.enum(["auto", "on", "off"], { message: "must be auto, on or off" })),
    DINV_MOUNTS_FS: text("auto").pipe(z.enum(["auto", "virtiofs", "9p"], { message: "unknown mount transport" })),
    DINV_9P_OPTIONS: text("msize=512000,cache=mmap").transform((s, ctx) => {
      if (s === "none") return "";
      const bad = s.split(",").find((o) => !/^(msize=\d{4,8}|cache=(none|loose|fscache|mmap)|access=(user|client|any)|posixacl|noatime)$/.test(o));
      return bad === undefined ? s : fail(ctx, `"${bad}" is not an accepted 9p option`);
    }),
    DINV_PUBLISH: text("auto").pipe(z.enum(["auto", "off"], { message: "must be auto or off" })),
    DINV_PUBLISH_PORTS: text("1-65535").transform((s, ctx) => {
      const result = parsePortRanges(s);
      if (!result.ok) return fail(ctx, result.reason);
      return result.value.length ? result.value : fail(ctx, "lists no port");
    }),
    DINV_LOG_LEVEL: text("info").pipe(z.enum(LOG_LEVELS, { message: "unknown log level" })),
    DINV_LOG_FORMAT: text("").pipe(z.enum(["", "json", "pretty"], { message: "unknown log format" })),
    DINV_9P_SECURITY: text("mapped").pipe(z.enum(["mapped", "none"], { message: "must be mapped or none" })),
    DINV_DOCKERD_CONFIG: daemonJson,
    DINV_WARM_START: text("auto").pipe(z.enum(["auto", "off"], { message: "must be auto or off" })),
    DINV_WARM_DIR: dir(DEFAULT_DIRS.warm),
    DINV_REGISTRY_MIRRORS: list((u) => /^https?:\/\/[^\s/]+(\/\S*)?$/.test(u), "an http:// or https:// URL"),
    DINV_INSECURE_REGISTRIES: list((r) => /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\d+\.\d+\.\d+\.\d+\/\d+$/.test(r), "a host[:port] or a CIDR"),
    ...cacheVariables,
    DINV_BIP: text(DEFAULT_BIP).transform((s, ctx) => {
      const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(s);
      if (!m || !ipv4.test(m[1]!) || Number(m[2]) < 8 || Number(m[2]) > 30) return fail(ctx, "not an address/prefix with prefix 8-30");
      return s;
    }),
  
  };
}

/** Each variable on its own. */
function variables(defaults: { guestDir: string }) {
  return z.object({ ...originalVariables, ...dinvVariables(defaults) });
}
type Variables = z.output<ReturnType<typeof variables>>;

/** What no single variable can tell: ports taken twice, directories that overlap, shares that reach dinv's own files. */
function crossChecks(env: Variables, ctx: z.RefinementCtx): void {
  const dockerPort = dockerPortOf(env);
  if (env.DINV_TCP_PORTS.includes(dockerPort)) {
    ctx.addIssue({ code: "custom", path: ["DINV_TCP_PORTS"], message: `port ${dockerPort} is taken by the docker API forward (DINV_DOCKER_PORT)` });
  }
  // The guest dockerd's own TCP port reaches the launcher side only as DINV_DOCKER_PORT (with TLS when set).
  const guestDockerPort = env.DOCKER_TLS_CERTDIR ? GUEST_DOCKER_TLS_PORT : GUEST_DOCKER_PORT;
  if (guestDockerPort !== dockerPort && env.DINV_TCP_PORTS.includes(guestDockerPort)) {
    ctx.addIssue({ code: "custom", path: ["DINV_TCP_PORTS"], message: `port ${guestDockerPort} is the guest dockerd's own API port; it is forwarded only as DINV_DOCKER_PORT (${dockerPort})` });
  }
  // The run directory's files are removed at the end of a run: never the guest's files, never /.
  if (env.DINV_RUN_DIR === "/" || overlaps(env.DINV_RUN_DIR, env.DINV_GUEST_DIR)) {
    ctx.addIssue({ code: "custom", path: ["DINV_RUN_DIR"], message: env.DINV_RUN_DIR === "/" ? "may not be / (dinv removes its run files there)" : `overlaps DINV_GUEST_DIR (${env.DINV_GUEST_DIR}): dinv removes its run files there` });
  }
  const control = env.DINV_CONTROL_PORT;
  if (control !== undefined && (control === dockerPort || env.DINV_TCP_PORTS.includes(control))) {
    ctx.addIssue({ code: "custom", path: ["DINV_CONTROL_PORT"], message: `port ${control} is already used by a forward` });
  }
  if (env.DINV_VOLUME_PATH && env.DINV_MOUNTS.some((m) => m === env.DINV_VOLUME_PATH)) {
    ctx.addIssue({ code: "custom", path: ["DINV_VOLUME_PATH"], message: "is also listed in DINV_MOUNTS" });
  }
  // A share the guest could use to rewrite the launcher, its disks or its keys.
  const guarded: [string, string | undefined][] = [
    ["the launcher's own files", LAUNCHER_DIR],
    ["DINV_GUEST_DIR", env.DINV_GUEST_DIR],
    ["DINV_DOCKER_DIR", env.DINV_DOCKER_DIR],
    ["DINV_VOLUME_DIR", env.DINV_VOLUME_DIR],
    ["DINV_RUN_DIR", env.DINV_RUN_DIR],
    ["DOCKER_TLS_CERTDIR", env.DOCKER_TLS_CERTDIR],
    // A guest that could write saved states would run its own RAM in later runs.
    ["DINV_WARM_DIR", env.DINV_WARM_START === "auto" ? env.DINV_WARM_DIR : undefined],
    // A guest that could write generations would poison every later job of the key.
    ["DINV_CACHE_DIR", env.DINV_CACHE_DIR],
  ];
  const cacheDir = env.DINV_CACHE_DIR;
  if (cacheDir) {
    const near = ([["DINV_DOCKER_DIR", env.DINV_DOCKER_DIR], ["DINV_RUN_DIR", env.DINV_RUN_DIR], ["DINV_GUEST_DIR", env.DINV_GUEST_DIR]] as const).find(([, d]) => overlaps(cacheDir, d));
    if (near) ctx.addIssue({ code: "custom", path: ["DINV_CACHE_DIR"], message: `overlaps ${near[0]} (${near[1]}): the cache is a directory of its own` });
  }
  for (const mount of env.DINV_MOUNTS) {
    const hit = guarded.find(([, dir]) => dir !== undefined && overlaps(mount, dir));
    if (hit) ctx.addIssue({ code: "custom", path: ["DINV_MOUNTS"], message: `"${mount}" overlaps ${hit[0]} (${hit[1]}): the guest could rewrite them` });
  }
}

/** The launcher's configuration, named by what it is for. */
function toHostConfig(env: Variables) {
  return {
    cpus: env.DINV_CPUS,
    memoryBytes: env.DINV_MEMORY,
    tcpPorts: env.DINV_TCP_PORTS,
    udpPorts: env.DINV_UDP_PORTS,
    mounts: env.DINV_MOUNTS,
    dockerSizeBytes: env.DINV_DOCKER_SIZE,
    volume: env.DINV_VOLUME_PATH
      ? { path: env.DINV_VOLUME_PATH, sizeBytes: env.DINV_VOLUME_SIZE, uid: env.DINV_VOLUME_UID, gid: env.DINV_VOLUME_GID }
      : undefined,
    dockerSock: { uid: env.DINV_DOCKER_SOCK_UID, gid: env.DINV_DOCKER_SOCK_GID },
    shutdownTimeoutSeconds: env.DINV_SHUTDOWN_TIMEOUT,
    machine: env.DINV_MACHINE,
    accel: env.DINV_ACCEL,
    dockerDir: env.DINV_DOCKER_DIR,
    volumeDir: env.DINV_VOLUME_DIR,
    runDir: env.DINV_RUN_DIR,
    guestDir: env.DINV_GUEST_DIR,
    dockerPort: dockerPortOf(env),
    tls: env.DOCKER_TLS_CERTDIR ? { certDir: env.DOCKER_TLS_CERTDIR } : undefined,
    bindAddr: env.DINV_BIND_ADDR,
    bip: env.DINV_BIP,
    dockerSockPath: env.DINV_DOCKER_SOCK,
    ninepOptions: env.DINV_9P_OPTIONS,
    ninepSecurity: env.DINV_9P_SECURITY,
    mountsFs: env.DINV_MOUNTS_FS,
    earlyStart: env.DINV_EARLY_START === "on",
    guestAslr: env.DINV_GUEST_ASLR,
    net: env.DINV_NET,
    control: { gid: env.DINV_CONTROL_GID, tcpPort: env.DINV_CONTROL_PORT },
    publish: { mode: env.DINV_PUBLISH, ports: env.DINV_PUBLISH_PORTS },
    log: { level: env.DINV_LOG_LEVEL, format: env.DINV_LOG_FORMAT || undefined },
    warm: { mode: env.DINV_WARM_START, dir: env.DINV_WARM_DIR },
    cache: env.DINV_CACHE_DIR ? { dir: env.DINV_CACHE_DIR, key: env.DINV_CACHE_KEY, restoreKeys: env.DINV_CACHE_RESTORE_KEYS, save: env.DINV_CACHE_SAVE, maxBytes: env.DINV_CACHE_MAX } : undefined,
    daemonConfig: {
      ...env.DINV_DOCKERD_CONFIG,
      ...(env.DINV_REGISTRY_MIRRORS.length ? { "registry-mirrors": env.DINV_REGISTRY_MIRRORS } : {}),
      ...(env.DINV_INSECURE_REGISTRIES.length ? { "insecure-registries": env.DINV_INSECURE_REGISTRIES } : {}),
    } as Record<string, unknown>,
  };
}

export function envSchema(defaults: { guestDir: string }) {
  return variables(defaults).superRefine(crossChecks).transform(toHostConfig);
}

export type HostConfig = z.output<ReturnType<typeof envSchema>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/**
 * The log settings alone, checked before the logger exists (so a bad one is an error naming it,
 * exit 2, not a crash); the full schema checks them again.
 */
export function parseLogEnv(env: Record<string, string | undefined>): HostConfig["log"] {
  const level = (env.DINV_LOG_LEVEL ?? "").trim() || "info";
  const format = (env.DINV_LOG_FORMAT ?? "").trim();
  const problems: string[] = [];
  if (!(LOG_LEVELS as readonly string[]).includes(level)) problems.push(`DINV_LOG_LEVEL=${JSON.stringify(env.DINV_LOG_LEVEL)}: unknown log level. Allowed: ${ALLOWED.DINV_LOG_LEVEL}`);
  if (format && format !== "json" && format !== "pretty") problems.push(`DINV_LOG_FORMAT=${JSON.stringify(env.DINV_LOG_FORMAT)}: unknown log format. Allowed: ${ALLOWED.DINV_LOG_FORMAT}`);
  if (problems.length) throw new ConfigError(problems);
  return { level: level as (typeof LOG_LEVELS)[number], format: (format || undefined) as "json" | "pretty" | undefined };
}

/** Parse the environment; throws ConfigError listing every bad variable. */
export function parseEnv(env: Record<string, string | undefined>, defaults: { guestDir: string }): HostConfig {
  const result = envSchema(defaults).safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "environment");
    const value = env[name];
    const shown = value === undefined ? "(unset)" : JSON.stringify(value);
    return `${name}=${shown}: ${issue.message}. Allowed: ${ALLOWED[name] ?? "see README"}`;
  });
  throw new ConfigError(problems);
}
