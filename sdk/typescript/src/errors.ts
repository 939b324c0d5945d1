/**
 * Errors: one class per server error code, all under {@link BallastError}.
 *
 * The server answers every failure with `{"error": {"code", "message", "details"}}`; the client
 * throws the class registered for `code` (`INSUFFICIENT_BALANCE` throws
 * {@link InsufficientBalanceError}, and so on). A code this SDK does not know yet throws a plain
 * `BallastError` carrying that code, so a newer server never breaks an older client.
 *
 * Related codes share a base class, so `instanceof AuthenticationError` catches every 401 and
 * `instanceof NotFoundError` every 404. Network failures throw {@link NetworkError}, whose
 * `code` is `NETWORK_ERROR` and whose `status` is `null`.
 */

import { isObject, type JsonObject } from "./json.js";

export interface BallastErrorOptions {
  code?: string;
  status?: number | null;
  details?: JsonObject;
  /** Seconds to wait (`Retry-After`), for rate limits. */
  retryAfter?: number | null;
  cause?: unknown;
}

/**
 * An error from the Ballast API (or, for {@link NetworkError}, from reaching it).
 *
 * `code` is the server's machine-readable code (`INSUFFICIENT_BALANCE`), `status` the HTTP
 * status (`null` when no response arrived), `message` the server's explanation and `details`
 * its structured details (for example `required` and `available`, decimal strings).
 */
export class BallastError extends Error {
  /** The code a subclass stands for; `null` on the bases. */
  static readonly defaultCode: string | null = null;

  readonly code: string;
  readonly status: number | null;
  readonly details: JsonObject;

  constructor(message: string, options: BallastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const own = (new.target as typeof BallastError).defaultCode;
    this.name = new.target.name;
    this.code = options.code ?? own ?? "UNKNOWN_ERROR";
    this.status = options.status ?? null;
    this.details = options.details ?? {};
  }

  override toString(): string {
    const where = this.status === null ? "" : ` (HTTP ${this.status})`;
    return `${this.name}: ${this.code}${where}: ${this.message}`;
  }
}

// ------------------------------------------------------------------------------ families

/** 400 `INVALID_REQUEST`: malformed or missing field; `details.field` names it. */
export class InvalidRequestError extends BallastError {
  static override readonly defaultCode: string | null = "INVALID_REQUEST";
}
/** Base of the 400 rejections of an order by the market's rules or the account's state. */
export class OrderRejectedError extends BallastError {}
/** Base of the 401 errors: the request could not be authenticated. */
export class AuthenticationError extends BallastError {}
/** 404: no such endpoint (`NOT_FOUND`); the base of every other 404 as well. */
export class NotFoundError extends BallastError {
  static override readonly defaultCode: string | null = "NOT_FOUND";
}
/** Base of the 409 errors: the request conflicts with a market's or order's state. */
export class ConflictError extends BallastError {}
/** Base of the 5xx errors (and of any 5xx that came without the error envelope). */
export class ServerError extends BallastError {}

// ------------------------------------------------------------------------------ 400

/** 400 `INVALID_PRICE`: off the market's tick grid or not strictly inside (floor, cap). */
export class InvalidPriceError extends OrderRejectedError {
  static override readonly defaultCode: string | null = "INVALID_PRICE";
}
/** 400 `INSUFFICIENT_BALANCE`: `details.required` and `details.available` (decimal strings). */
export class InsufficientBalanceError extends OrderRejectedError {
  static override readonly defaultCode: string | null = "INSUFFICIENT_BALANCE";
}
/** 400 `ORDER_SIZE_TOO_SMALL`: below the market's `min_size`. */
export class OrderSizeTooSmallError extends OrderRejectedError {
  static override readonly defaultCode: string | null = "ORDER_SIZE_TOO_SMALL";
}
/** 400 `ORDER_SIZE_TOO_LARGE`: above the market's `max_order_size`. */
export class OrderSizeTooLargeError extends OrderRejectedError {
  static override readonly defaultCode: string | null = "ORDER_SIZE_TOO_LARGE";
}
/** 400 `POSITION_LIMIT_EXCEEDED`: position plus open orders could exceed the limit. */
export class PositionLimitExceededError extends OrderRejectedError {
  static override readonly defaultCode: string | null = "POSITION_LIMIT_EXCEEDED";
}
/** 400 `REDUCE_ONLY_WOULD_INCREASE`: a reduce-only order larger than the position. */
export class ReduceOnlyWouldIncreaseError extends OrderRejectedError {
  static override readonly defaultCode: string | null = "REDUCE_ONLY_WOULD_INCREASE";
}
/** 400 `POST_ONLY_WOULD_CROSS`: a post-only order would have taken liquidity. */
export class PostOnlyWouldCrossError extends OrderRejectedError {
  static override readonly defaultCode: string | null = "POST_ONLY_WOULD_CROSS";
}
/** 400 `INVALID_SETTLEMENT` (operator API). */
export class InvalidSettlementError extends BallastError {
  static override readonly defaultCode: string | null = "INVALID_SETTLEMENT";
}

// ------------------------------------------------------------------------------ 401, 403

/** 401 `UNAUTHORIZED`: missing, unknown or revoked API key. */
export class UnauthorizedError extends AuthenticationError {
  static override readonly defaultCode: string | null = "UNAUTHORIZED";
}
/**
 * 401 `INVALID_SIGNATURE`: `details` say which message shape the server expected;
 * `details.reason` is `"replayed"` when the server had already seen this signature.
 */
export class InvalidSignatureError extends AuthenticationError {
  static override readonly defaultCode: string | null = "INVALID_SIGNATURE";
}
/** 401 `TIMESTAMP_EXPIRED`: the timestamp was more than 30 s from server time. */
export class TimestampExpiredError extends AuthenticationError {
  static override readonly defaultCode: string | null = "TIMESTAMP_EXPIRED";
}
/** 403 `FORBIDDEN`: the key lacks the scope (`read` or `trade`). */
export class ForbiddenError extends BallastError {
  static override readonly defaultCode: string | null = "FORBIDDEN";
}

// ------------------------------------------------------------------------------ 404, 405

/** 404 `MARKET_NOT_FOUND`. */
export class MarketNotFoundError extends NotFoundError {
  static override readonly defaultCode: string | null = "MARKET_NOT_FOUND";
}
/** 404 `ORDER_NOT_FOUND`: no such order for this account. */
export class OrderNotFoundError extends NotFoundError {
  static override readonly defaultCode: string | null = "ORDER_NOT_FOUND";
}
/** 404 `ORDER_GROUP_NOT_FOUND`: no such order group for this account (also when an order names one). */
export class OrderGroupNotFoundError extends NotFoundError {
  static override readonly defaultCode: string | null = "ORDER_GROUP_NOT_FOUND";
}
/** 404 `ACCOUNT_NOT_FOUND` (operator API). */
export class AccountNotFoundError extends NotFoundError {
  static override readonly defaultCode: string | null = "ACCOUNT_NOT_FOUND";
}
/** 404 `KEY_NOT_FOUND` (operator API). */
export class KeyNotFoundError extends NotFoundError {
  static override readonly defaultCode: string | null = "KEY_NOT_FOUND";
}
/** 405 `METHOD_NOT_ALLOWED`. */
export class MethodNotAllowedError extends BallastError {
  static override readonly defaultCode: string | null = "METHOD_NOT_ALLOWED";
}

// ------------------------------------------------------------------------------ 409

/** 409 `MARKET_CLOSED`: the market is halted, closed or past its close time. */
export class MarketClosedError extends ConflictError {
  static override readonly defaultCode: string | null = "MARKET_CLOSED";
}
/** 409 `ORDER_NOT_CANCELABLE`: the order is already filled, canceled or expired. */
export class OrderNotCancelableError extends ConflictError {
  static override readonly defaultCode: string | null = "ORDER_NOT_CANCELABLE";
}
/** 409 `DUPLICATE_CLIENT_ORDER_ID`: another order already uses this id. */
export class DuplicateClientOrderIdError extends ConflictError {
  static override readonly defaultCode: string | null = "DUPLICATE_CLIENT_ORDER_ID";
}
/** 409 `ORDER_GROUP_TRIGGERED`: the order's group reached its contract limit; reset it first. */
export class OrderGroupTriggeredError extends ConflictError {
  static override readonly defaultCode: string | null = "ORDER_GROUP_TRIGGERED";
}
/** 409 `INVALID_TRANSITION` (operator API). */
export class InvalidTransitionError extends ConflictError {
  static override readonly defaultCode: string | null = "INVALID_TRANSITION";
}
/** 409 `MARKET_EXISTS` (operator API). */
export class MarketExistsError extends ConflictError {
  static override readonly defaultCode: string | null = "MARKET_EXISTS";
}
/** 409 `ACCOUNT_EXISTS` (operator API). */
export class AccountExistsError extends ConflictError {
  static override readonly defaultCode: string | null = "ACCOUNT_EXISTS";
}

// ------------------------------------------------------------------------------ 413, 415, 429

/** 413 `PAYLOAD_TOO_LARGE`: body over the server's limit (64 KiB by default). */
export class PayloadTooLargeError extends BallastError {
  static override readonly defaultCode: string | null = "PAYLOAD_TOO_LARGE";
}
/** 415 `UNSUPPORTED_MEDIA_TYPE`. */
export class UnsupportedMediaTypeError extends BallastError {
  static override readonly defaultCode: string | null = "UNSUPPORTED_MEDIA_TYPE";
}

/** 429 `RATE_LIMIT_EXCEEDED`; `retryAfter` is the server's `Retry-After`, in seconds. */
export class RateLimitError extends BallastError {
  static override readonly defaultCode: string | null = "RATE_LIMIT_EXCEEDED";
  /** Seconds until the window turns (`Retry-After`), when the server said. */
  readonly retryAfter: number | null;

  constructor(message: string, options: BallastErrorOptions = {}) {
    super(message, options);
    this.retryAfter = options.retryAfter ?? null;
  }
}

/**
 * 429 `FAUCET_LIMIT_EXCEEDED`: the sandbox faucet's daily cap for this account is used.
 * `details` has `daily_cap`, `granted_today`, `requested` and `resets_at`; `retryAfter` is the
 * seconds until then. Unlike a rate limit, the client never waits this out.
 */
export class FaucetLimitError extends RateLimitError {
  static override readonly defaultCode: string | null = "FAUCET_LIMIT_EXCEEDED";

  /** When the cap resets (`details.resets_at`), if given. */
  get resetsAt(): Date | null {
    const value = this.details.resets_at;
    if (typeof value !== "string") {
      return null;
    }
    const moment = new Date(value);
    return Number.isNaN(moment.getTime()) ? null : moment;
  }
}

/** `TOO_MANY_CONNECTIONS`: over the simultaneous stream connections of a key (or an IP). */
export class TooManyConnectionsError extends BallastError {
  static override readonly defaultCode: string | null = "TOO_MANY_CONNECTIONS";
}

// ------------------------------------------------------------------------------ 5xx, transport

/** 500 `INTERNAL_ERROR`: a server bug; no internals are disclosed. */
export class InternalServerError extends ServerError {
  static override readonly defaultCode: string | null = "INTERNAL_ERROR";
}
/** 503 `SERVICE_UNAVAILABLE`: the exchange stopped taking commands; retry later. */
export class ServiceUnavailableError extends ServerError {
  static override readonly defaultCode: string | null = "SERVICE_UNAVAILABLE";
}

/**
 * No usable response: connection refused or reset, DNS failure, timeout. For a request that is
 * not safe to repeat, the outcome is unknown: the server may or may not have acted on it.
 * (`placeOrder` is safe: it always carries a `clientOrderId`.)
 */
export class NetworkError extends BallastError {
  static override readonly defaultCode: string | null = "NETWORK_ERROR";
}

/** The server answered something this SDK cannot read (not JSON, or missing fields). */
export class InvalidResponseError extends BallastError {
  static override readonly defaultCode: string | null = "INVALID_RESPONSE";
}

type ErrorClass = new (message: string, options?: BallastErrorOptions) => BallastError;

const CLASSES: (ErrorClass & { defaultCode: string | null })[] = [
  InvalidRequestError,
  NotFoundError,
  InvalidPriceError,
  InsufficientBalanceError,
  OrderSizeTooSmallError,
  OrderSizeTooLargeError,
  PositionLimitExceededError,
  ReduceOnlyWouldIncreaseError,
  PostOnlyWouldCrossError,
  InvalidSettlementError,
  UnauthorizedError,
  InvalidSignatureError,
  TimestampExpiredError,
  ForbiddenError,
  MarketNotFoundError,
  OrderNotFoundError,
  OrderGroupNotFoundError,
  AccountNotFoundError,
  KeyNotFoundError,
  MethodNotAllowedError,
  MarketClosedError,
  OrderNotCancelableError,
  DuplicateClientOrderIdError,
  OrderGroupTriggeredError,
  InvalidTransitionError,
  MarketExistsError,
  AccountExistsError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  RateLimitError,
  FaucetLimitError,
  TooManyConnectionsError,
  InternalServerError,
  ServiceUnavailableError,
  NetworkError,
  InvalidResponseError,
];

const BY_CODE = new Map<string, ErrorClass>(
  CLASSES.filter((cls) => cls.defaultCode !== null).map((cls) => [cls.defaultCode as string, cls]),
);

/** The error class for a server error code; `BallastError` for unknown codes. */
export function errorClass(code: string): new (message: string, options?: BallastErrorOptions) => BallastError {
  return BY_CODE.get(code) ?? BallastError;
}

/**
 * The error for an error response: its HTTP status and decoded JSON body. A body that is not
 * the error envelope (a proxy's HTML page, say) gives a `ServerError` for 5xx, a
 * `RateLimitError` for 429 and a `BallastError` with code `HTTP_<status>` otherwise.
 */
export function errorFromBody(status: number | null, body: unknown, retryAfter: number | null = null): BallastError {
  const envelope = isObject(body) ? body.error : undefined;
  if (!isObject(envelope) || typeof envelope.code !== "string") {
    const message = `HTTP ${status} without an error envelope`;
    if (status === 429) {
      return new RateLimitError(message, { code: "RATE_LIMIT_EXCEEDED", status, retryAfter });
    }
    const options = { code: `HTTP_${status}`, status };
    return status !== null && status >= 500 ? new ServerError(message, options) : new BallastError(message, options);
  }
  const code = envelope.code;
  const message = typeof envelope.message === "string" && envelope.message !== "" ? envelope.message : code;
  const details = isObject(envelope.details) ? envelope.details : {};
  const cls = errorClass(code);
  return new cls(message, { code, status, details, retryAfter });
}
