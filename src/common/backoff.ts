/**
 * The one retry delay policy of the project: capped exponential backoff with full jitter (AWS's
 * "Exponential Backoff And Jitter"): attempt n waits a uniform random time in
 * [floor, min(max, initial * factor^n)]. The jitter keeps many agents from retrying in lockstep after
 * an etcd outage ends; the floor (default initial / 2) keeps a retry loop from spinning at ~0 ms.
 * Pure apart from the injectable random source; `abortableSleep` is the matching timer.
 */

export interface BackoffPolicy {
  /** Upper bound of the first delay, ms. */
  readonly initialMs: number;
  /** Cap of every delay, ms. */
  readonly maxMs: number;
  /** Growth of the upper bound per attempt (default 2). */
  readonly factor?: number;
  /** Lowest delay, ms (default initialMs / 2). */
  readonly floorMs?: number;
  /** [0, 1) like Math.random (default Math.random). Tests pass () => 0.999... for the upper bound. */
  readonly random?: () => number;
}

export class Backoff {
  private attempts = 0;
  private readonly factor: number;
  private readonly floor: number;
  private readonly random: () => number;

  constructor(private readonly policy: BackoffPolicy) {
    if (!(policy.initialMs > 0) || !(policy.maxMs >= policy.initialMs)) {
      throw new RangeError(`backoff: need 0 < initialMs <= maxMs, got ${policy.initialMs}, ${policy.maxMs}`);
    }
    this.factor = policy.factor ?? 2;
    this.floor = Math.min(policy.floorMs ?? policy.initialMs / 2, policy.maxMs);
    this.random = policy.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.attempts;
  }

  /** Upper bound of the delay of the next attempt (no jitter): min(max, initial * factor^attempt). */
  ceiling(): number {
    return Math.min(this.policy.maxMs, this.policy.initialMs * this.factor ** Math.min(this.attempts, 64));
  }

  /** The delay before the next try; counts one more failure. */
  next(): number {
    const ceiling = this.ceiling();
    this.attempts += 1;
    const floor = Math.min(this.floor, ceiling);
    return Math.round(floor + this.random() * (ceiling - floor));
  }

  /** After a success: the next failure starts from the first delay again. */
  reset(): void {
    this.attempts = 0;
  }
}

/** Waits `ms`, resolving early (never rejecting) when `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
