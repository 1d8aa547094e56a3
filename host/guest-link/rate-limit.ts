// A token bucket for log lines caused by the guest: a flooding guest cannot flood the host log.

export class RateLimiter {
  private tokens: number;
  private last: number;
  private suppressed = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Whether one more event may pass; `suppressed` says how many were dropped before it. */
  take(): { allowed: boolean; suppressed: number } {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) {
      this.suppressed++;
      return { allowed: false, suppressed: 0 };
    }
    this.tokens -= 1;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { allowed: true, suppressed };
  }
}
