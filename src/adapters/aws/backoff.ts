export interface BackoffOptions {
  /** Tries in all, the first included. @default 5 */
  readonly attempts?: number;
  /** The first wait; each next one doubles, with full jitter. @default 200 */
  readonly baseMs?: number;
  /** No single wait is longer than this. @default 5000 */
  readonly maxMs?: number;
  /** How to wait. @default a timer */
  readonly sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) for the jitter. @default Math.random */
  readonly random?: () => number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn`, and again after a growing, jittered wait while it fails with an error `retryable`
 * accepts, up to `attempts` tries; then the last error is thrown as it is. The SDK retries throttling
 * too, but only a few times within one call; a quiesce or resume that gives up leaves an API in the
 * wrong state, so it is worth waiting a little longer.
 *
 * @example
 * ```ts
 * await withBackoff(() => lambda.send(cmd), (e) => isAwsError(e, 'TooManyRequestsException'));
 * ```
 */
export async function withBackoff<T>(fn: () => Promise<T>, retryable: (error: unknown) => boolean, opts: BackoffOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const base = opts.baseMs ?? 200;
  const max = opts.maxMs ?? 5_000;
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !retryable(error)) throw error;
      // Full jitter: many Lambdas throttled at once should not all come back at the same moment.
      await sleep(Math.round(random() * Math.min(max, base * 2 ** (attempt - 1))));
    }
  }
}
