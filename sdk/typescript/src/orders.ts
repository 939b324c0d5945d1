/**
 * Orders as the client sends them: the request body (with a generated `client_order_id`) and the
 * checks made before sending, with the server's own codes, messages and details.
 */

import { type DecimalString, decimal, type Numeric, tryNormalize } from "./decimal.js";
import {
  type BallastError,
  InvalidPriceError,
  InvalidRequestError,
  OrderSizeTooLargeError,
  OrderSizeTooSmallError,
} from "./errors.js";
import type { JsonObject } from "./json.js";
import type { MarketRules } from "./models.js";

export type Side = "buy" | "sell";
export type OrderType = "limit" | "market";
export type TimeInForce = "GTC" | "IOC" | "FOK" | "GTD";
export type SelfTradePrevention = "cancel_newest" | "cancel_oldest" | "cancel_both" | "decrement";
export type OrderStatus = "open" | "filled" | "canceled" | "expired" | "rejected" | "all";
export type MarketStatus = "pending" | "open" | "halted" | "closed" | "resolving" | "settled";
export type MarketType = "binary" | "index";
export type CandleInterval = "1m" | "5m" | "1h" | "1d";
/**
 * A time: a `Date`, ISO-8601 text (a date such as `"2025-03-01"` stands for the whole day where
 * the API filters by date) or Unix milliseconds.
 */
export type TimeLike = Date | string | number;

/** The arguments of `placeOrder` (and of each order of `placeOrders`). */
export interface PlaceOrderParams {
  marketId: string;
  side: Side;
  /** `limit` (default) or `market`. */
  orderType?: OrderType;
  /** A decimal string (recommended) or a number; a market order's protection price. */
  price?: Numeric | null;
  /** Whole contracts. */
  size: number | string;
  timeInForce?: TimeInForce;
  /** For `GTD`. */
  expireAt?: TimeLike;
  postOnly?: boolean;
  reduceOnly?: boolean;
  /**
   * Idempotency key (1–64 of `A-Za-z0-9._:-`): a retry with the same id returns the first order
   * and places nothing. Generated when not given, so retries are always safe.
   */
  clientOrderId?: string;
  stp?: SelfTradePrevention;
  /** Place it in one of the account's order groups (`createOrderGroup`): its fills count toward the group's limit. */
  orderGroupId?: string;
}

/** The arguments of `createOrderGroup`. */
export interface CreateOrderGroupParams {
  /** Contracts the group's orders may fill within the window (reaching it triggers the group). */
  maxFilledSize: number;
  /** The rolling window in seconds, 1 to 86,400 (the server's default is 15). */
  windowS?: number;
}

/** The JSON body of `createOrderGroup`. */
export function orderGroupBody(params: CreateOrderGroupParams): JsonObject {
  const body: JsonObject = { max_filled_size: sizeInt(params.maxFilledSize, "max_filled_size") };
  if (params.windowS !== undefined) {
    body.window_s = sizeInt(params.windowS, "window_s");
  }
  return body;
}

/** The arguments of `amendOrder`: a new price and/or a new total size. */
export interface AmendOrderParams {
  price?: Numeric;
  size?: number | string;
}

/** One amend of `amendOrders`: the order and its new price and/or total size. */
export interface BatchAmendParams extends AmendOrderParams {
  orderId: string;
}

export const CLIENT_ORDER_ID_PREFIX = "ts-";

/** A fresh id within the server's pattern `^[A-Za-z0-9._:-]+$` (35 characters). */
export function newClientOrderId(): string {
  const bytes = new Uint8Array(16);
  const crypto = (globalThis as { crypto?: { getRandomValues?: (array: Uint8Array) => Uint8Array } }).crypto;
  if (crypto?.getRandomValues !== undefined) {
    crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i += 1) {
      bytes[i] = Math.floor(Math.random() * 256);
    }
  }
  let hex = "";
  for (const byte of bytes) {
    hex += byte.toString(16).padStart(2, "0");
  }
  return CLIENT_ORDER_ID_PREFIX + hex;
}

/** A price or amount as exact decimal text (a number goes through its shortest text: 0.87 → "0.87"). */
export function priceText(value: unknown, field = "price"): DecimalString {
  if (typeof value === "boolean") {
    throw new InvalidRequestError(`${field} must be a number`, { details: { field } });
  }
  const text = tryNormalize(value);
  if (text === null) {
    throw new InvalidRequestError(`${field} must be a finite number or a decimal string, not ${String(value)}`, {
      details: { field },
    });
  }
  return text;
}

/** A whole number of contracts (an integral number or decimal string is accepted). */
export function sizeInt(value: unknown, field = "size"): number {
  if (typeof value === "number" && Number.isSafeInteger(value)) {
    return value;
  }
  const text = typeof value === "boolean" ? null : tryNormalize(value);
  if (text === null || text.includes(".") || !Number.isSafeInteger(Number(text))) {
    throw new InvalidRequestError(`${field} must be a whole number of contracts, not ${String(value)}`, {
      details: { field },
    });
  }
  return Number(text);
}

/** A time for a query parameter: a date stays a date (the server takes the whole day). */
export function timeParam(value: TimeLike): string {
  if (value instanceof Date) {
    return String(value.getTime());
  }
  return String(value);
}

/** A time for a JSON body: a `Date` as Unix milliseconds. */
export function timeBody(value: TimeLike): string | number {
  return value instanceof Date ? value.getTime() : value;
}

/**
 * The JSON body of an order. `clientOrderId` is generated when absent; give the same
 * `clientOrderId` again to retry an order without placing it twice.
 */
export function orderBody(params: PlaceOrderParams): JsonObject {
  if (typeof params !== "object" || params === null) {
    throw new InvalidRequestError("an order must be an object of placeOrder's parameters", {
      details: { field: "orders" },
    });
  }
  const body: JsonObject = {
    market_id: params.marketId,
    side: String(params.side).toLowerCase(),
    type: String(params.orderType ?? "limit").toLowerCase(),
  };
  if (params.price !== undefined && params.price !== null) {
    body.price = priceText(params.price);
  }
  body.size = sizeInt(params.size);
  if (params.timeInForce !== undefined) {
    body.time_in_force = String(params.timeInForce).toUpperCase();
  }
  if (params.expireAt !== undefined) {
    body.expire_at = timeBody(params.expireAt);
  }
  if (params.postOnly === true) {
    body.post_only = true;
  }
  if (params.reduceOnly === true) {
    body.reduce_only = true;
  }
  body.client_order_id = params.clientOrderId ?? newClientOrderId();
  if (params.stp !== undefined) {
    body.stp = String(params.stp).toLowerCase();
  }
  if (params.orderGroupId !== undefined) {
    body.order_group_id = params.orderGroupId;
  }
  return body;
}

/** The JSON body of an amend. */
export function amendBody(params: AmendOrderParams): JsonObject {
  const body: JsonObject = {};
  if (params.price !== undefined) {
    body.price = priceText(params.price);
  }
  if (params.size !== undefined) {
    body.size = sizeInt(params.size);
  }
  return body;
}

// Beyond any market's cap, as the server bounds it.
const MAX_TICKS = "1000000000000";

/**
 * The rejection the server would give for this order body under these rules, if any: the tick
 * grid, the (floor, cap) range and the size bounds, in the server's order and with its codes.
 * Balances, positions and market status stay the server's to judge.
 */
export function checkOrder(rules: MarketRules, body: JsonObject): BallastError | null {
  const orderType = body.type ?? "limit";
  let price: DecimalString | null = null;
  if (body.price !== undefined && body.price !== null) {
    const raw = String(body.price);
    price = decimal.normalize(raw);
    const ticks = decimal.div(price, rules.tickSize, 6, "down");
    if (decimal.gt(decimal.abs(ticks), MAX_TICKS)) {
      return new InvalidPriceError(`price ${raw} is outside any market's range`, {
        status: 400,
        details: { field: "price", price: raw },
      });
    }
    if (!decimal.isMultipleOf(price, rules.tickSize)) {
      return new InvalidPriceError(`price ${price} is not on the market's tick grid of ${rules.tickSize}`, {
        status: 400,
        details: { field: "price", price, tick_size: rules.tickSize },
      });
    }
  } else if (orderType === "limit") {
    return new InvalidRequestError("a limit order needs a price", { status: 400, details: { field: "price" } });
  }
  const size = body.size;
  if (typeof size === "number") {
    if (size < rules.minSize) {
      return new OrderSizeTooSmallError(`order size ${size} is below the market's minimum of ${rules.minSize}`, {
        status: 400,
        details: { size, min_size: rules.minSize },
      });
    }
    if (rules.maxOrderSize !== null && size > rules.maxOrderSize) {
      return new OrderSizeTooLargeError(`order size ${size} is above the market's maximum of ${rules.maxOrderSize}`, {
        status: 400,
        details: { size, max_order_size: rules.maxOrderSize },
      });
    }
  }
  if (price !== null && !(decimal.lt(rules.floor, price) && decimal.lt(price, rules.cap))) {
    const field = orderType === "limit" ? "price" : "protection_price";
    return new InvalidPriceError(`${field} must lie strictly between the market's floor and cap`, {
      status: 400,
      details: { field, price, floor: rules.floor, cap: rules.cap },
    });
  }
  return null;
}
