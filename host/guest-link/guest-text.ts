// Text that comes from the guest, made safe for the launcher's log, the CLI and the status
// snapshot: one line, no terminal escapes or control characters, and one byte budget for every
// line the guest causes (its log messages, its console, its phase changes).

/** One printable line: terminal escapes removed, other control characters shown as spaces. Pure. */
export function cleanText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ");
}

/** Every string inside a (parsed, plain JSON) value cleaned. Pure. */
export function cleanStrings<T>(value: T): T {
  if (typeof value === "string") return cleanText(value) as T;
  if (Array.isArray(value)) return value.map((v) => cleanStrings(v)) as T;
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cleanStrings(v)])) as T;
  return value;
}

/** A token bucket of bytes: what the guest may make the launcher log per second, with a burst. */
export class ByteBudget {
  private tokens: number;
  private last: number;
  private suppressedLines = 0;

  constructor(
    private readonly bytesPerSecond = 64 * 1024,
    private readonly burstBytes = 512 * 1024,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burstBytes;
    this.last = now();
  }

  /** Whether a line of `bytes` may be logged; `suppressed` counts the lines dropped before it. */
  take(bytes: number): { allowed: boolean; suppressed: number } {
    const t = this.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((t - this.last) / 1000) * this.bytesPerSecond);
    this.last = t;
    if (this.tokens < bytes) {
      this.suppressedLines++;
      return { allowed: false, suppressed: 0 };
    }
    this.tokens -= bytes;
    const suppressed = this.suppressedLines;
    this.suppressedLines = 0;
    return { allowed: true, suppressed };
  }
}

/** A guest-chosen string placed where a bounded field takes it (the control API's reasons): at most `max` characters. Pure. */
export function boundText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A logger call that spends the guest's byte budget: a line the guest causes is dropped (and counted) past it. */
export type GuestLine = (level: "info" | "warn", line: string) => void;

export function budgetedLines(budget: ByteBudget, log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void }): GuestLine {
  return (level, line) => {
    const gate = budget.take(line.length);
    if (gate.suppressed) log.warn({ suppressed: gate.suppressed }, "guest-caused log lines suppressed (byte budget)");
    if (gate.allowed) log[level]({}, line);
  };
}
