// The ';'-separated lists of the original DinV (ports and mount paths). Pure.

export type ListResult<T> = { ok: true; value: T[] } | { ok: false; reason: string };

/** "8080; 8443;9000-9002" -> [8080, 8443, 9000, 9001, 9002]; rejects bad, zero, >65535, duplicates. */
export function parsePortList(text: string, maxPorts = 256): ListResult<number> {
  const ranges = parsePortRanges(text);
  if (!ranges.ok) return ranges;
  const ports: number[] = [];
  for (const { from, to } of ranges.value) {
    for (let port = from; port <= to; port++) {
      if (ports.includes(port)) return { ok: false, reason: `port ${port} is listed twice` };
      ports.push(port);
      if (ports.length > maxPorts) return { ok: false, reason: `more than ${maxPorts} ports` };
    }
  }
  return { ok: true, value: ports };
}

export interface PortRange {
  from: number;
  to: number;
}

/** "1024-65535; 80" -> ranges, not expanded; rejects bad, zero, >65535 and backwards ranges. */
export function parsePortRanges(text: string): ListResult<PortRange> {
  const ranges: PortRange[] = [];
  for (const raw of text.split(";")) {
    const item = raw.trim();
    if (!item) continue;
    const match = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(item);
    if (!match) return { ok: false, reason: `"${item}" is not a port or a range like 8000-8010` };
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    for (const port of [from, to]) if (port < 1 || port > 65535) return { ok: false, reason: `port ${port} is outside 1-65535` };
    if (to < from) return { ok: false, reason: `range ${item} runs backwards` };
    ranges.push({ from, to });
  }
  return { ok: true, value: ranges };
}

/** "/data; /srv/a b" -> ["/data", "/srv/a b"]; absolute, normalised, no duplicates or control characters. */
export function parsePathList(text: string): ListResult<string> {
  const paths: string[] = [];
  for (const raw of text.split(";")) {
    const item = raw.trim();
    if (!item) continue;
    const reason = checkPath(item);
    if (reason) return { ok: false, reason };
    const normal = normalisePath(item);
    if (paths.includes(normal)) return { ok: false, reason: `"${normal}" is listed twice` };
    paths.push(normal);
  }
  return { ok: true, value: paths };
}

/** Why a path is unusable as a mount path, or undefined. */
export function checkPath(path: string): string | undefined {
  if (!path.startsWith("/")) return `"${path}" is not an absolute path`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) return `${JSON.stringify(path)} contains a control character (newline, tab, ...)`;
  if (path.split("/").includes("..")) return `"${path}" contains ".."`;
  if (normalisePath(path) === "/") return `"/" cannot be mounted over`;
  if (path.length > 1024) return `path longer than 1024 characters`;
  return undefined;
}

export function normalisePath(path: string): string {
  const parts = path.split("/").filter((p) => p && p !== ".");
  return `/${parts.join("/")}`;
}
