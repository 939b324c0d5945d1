import { type BallastError, FaucetLimitError, NetworkError, RateLimitError, ServerError } from "./errors.js";

/**
 * When to try a request again, and after how long (the Python SDK's `RetryPolicy`).
 *
 * - 429: wait `Retry-After` (plus a little jitter) if that is at most `maxRetryWaitMs`; never for
 *   `FAUCET_LIMIT_EXCEEDED` (a daily cap, not a rate window).
 * - 5xx and network failures: exponential backoff with jitter, only for requests that are safe to
 *   repeat (reads, cancels, orders with a `clientOrderId`); a 503's `Retry-After` is honoured.
 * - Anything else is not retried. At most `maxRetries` retries per call.
 */
export class RetryPolicy {
  maxRetries: number;
  maxRetryWaitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  readonly random: () => number;

  constructor(
    options: {
      maxRetries?: number;
      maxRetryWaitMs?: number;
      backoffBaseMs?: number;
      backoffMaxMs?: number;
      random?: () => number;
    } = {},
  ) {
    this.maxRetries = options.maxRetries ?? 3;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 60_000;
    this.backoffBaseMs = options.backoffBaseMs ?? 250;
    this.backoffMaxMs = options.backoffMaxMs ?? 8_000;
    this.random = options.random ?? Math.random;
  }

  /** The backoff before retry number `attempt + 1`: doubling, capped, with jitter (50–100 %). */
  backoff(attempt: number): number {
    const delay = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** attempt);
    return delay * (0.5 + 0.5 * this.random());
  }

  /**
   * Milliseconds to wait before retry number `attempt + 1`, or `null` to give up. A
   * server-given `Retry-After` longer than `maxRetryWaitMs` gives up at once (waiting less would
   * only be refused again); backoff delays are capped at `maxRetryWaitMs`.
   */
  delay(attempt: number, idempotent: boolean, error: BallastError, retryAfterMs: number | null = null): number | null {
    if (attempt >= this.maxRetries) {
      return null;
    }
    if (error instanceof FaucetLimitError) {
      return null; // a daily cap, reset at UTC midnight: not a window worth sleeping through
    }
    if (error instanceof RateLimitError) {
      if (error.retryAfter === null) {
        return Math.min(this.backoff(attempt), this.maxRetryWaitMs);
      }
      const wait = error.retryAfter * 1000;
      if (wait > this.maxRetryWaitMs) {
        return null;
      }
      // A little jitter after the window turns, so clients refused together spread out.
      return wait + this.random() * 250;
    }
    if (idempotent && (error instanceof ServerError || error instanceof NetworkError)) {
      if (retryAfterMs !== null && retryAfterMs > this.maxRetryWaitMs) {
        return null;
      }
      return Math.max(Math.min(this.backoff(attempt), this.maxRetryWaitMs), retryAfterMs ?? 0);
    }
    return null;
  }
}

/** A promise that resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
