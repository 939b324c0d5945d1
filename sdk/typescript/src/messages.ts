/**
 * What a stream yields: typed channel messages (a `snapshot` then `update`s, per channel) and
 * connection events (`connected`, `disconnected`, `resynced`, …), one union discriminated by
 * `type` (and channel messages by `channel`).
 *
 * Every channel message has `type` (`"snapshot"` or `"update"`), `channel`, `seq` (its
 * subscription's sequence number, rising by one from the snapshot), `exchangeSeq` (the exchange's
 * event sequence at which it holds), `time`, the `marketId` on public per-market channels, the
 * channel's data parsed into the REST models, and `data`, the raw JSON object as sent.
 */

import { type BallastError, InvalidResponseError } from "./errors.js";
import { isObject, type Json, type JsonObject } from "./json.js";
import {
  type Balance,
  type BookLevel,
  type Fill,
  type MarketState,
  type OrderGroup,
  type OrderUpdate,
  type Position,
  parseBalance,
  parseBookLevel,
  parseDate,
  parseFill,
  parseMarketState,
  parseOrderGroup,
  parseOrderUpdate,
  parsePosition,
  parseTicker,
  parseTrade,
  type Ticker,
  type Trade,
} from "./models.js";

export const PUBLIC_CHANNELS = ["orderbook", "trades", "ticker", "markets"] as const;
export const PRIVATE_CHANNELS = ["orders", "fills", "positions", "balance", "order_groups"] as const;
export type PublicChannel = (typeof PUBLIC_CHANNELS)[number];
export type PrivateChannel = (typeof PRIVATE_CHANNELS)[number];
export type Channel = PublicChannel | PrivateChannel;

/**
 * Why a subscription got a fresh snapshot: the connection was re-established, its `seq` jumped
 * (a message was lost), or the stream's buffer of unread messages overflowed.
 */
export type ResyncReason = "reconnect" | "gap" | "overflow";

interface ChannelBase<C extends Channel> {
  readonly type: "snapshot" | "update";
  readonly channel: C;
  readonly marketId: string | null;
  readonly seq: number;
  readonly exchangeSeq: number;
  readonly time: Date;
  readonly isSnapshot: boolean;
  /** The message's `data` as sent. */
  readonly data: JsonObject;
}

/** `orderbook`: the snapshot's levels (best first, `depth` set), or the levels whose size changed (0: gone). */
export interface OrderBookMessage extends ChannelBase<"orderbook"> {
  readonly bids: readonly BookLevel[];
  readonly asks: readonly BookLevel[];
  readonly depth: number | null;
}
/** `trades`: up to 50 recent trades (snapshot) or the new ones, oldest first. */
export interface TradesMessage extends ChannelBase<"trades"> {
  readonly trades: readonly Trade[];
}
/** `ticker`: sent when one of the ticker's fields changes. */
export interface TickerMessage extends ChannelBase<"ticker"> {
  readonly ticker: Ticker;
}
/** `markets`: every market (snapshot), or the markets whose lifecycle moved. */
export interface MarketsMessage extends ChannelBase<"markets"> {
  readonly markets: readonly MarketState[];
}
/** `orders` (private): the open orders (snapshot), or every change, in order. */
export interface OrdersMessage extends ChannelBase<"orders"> {
  readonly orders: readonly OrderUpdate[];
}
/** `fills` (private): the account's new fills (the snapshot is empty). */
export interface FillsMessage extends ChannelBase<"fills"> {
  readonly fills: readonly Fill[];
}
/** `positions` (private): open positions (snapshot), or those that changed (`size` 0 when flat). */
export interface PositionsMessage extends ChannelBase<"positions"> {
  readonly positions: readonly Position[];
}
/** `balance` (private): the balance, and each change of it. */
export interface BalanceMessage extends ChannelBase<"balance"> {
  readonly balance: Balance;
}

/**
 * `order_groups` (private): an order group of the account that reached its limit, as the trigger
 * left it (`event` `triggered`); the snapshot is empty. Its orders' cancels follow on `orders`.
 */
export interface OrderGroupsMessage extends ChannelBase<"order_groups"> {
  readonly orderGroups: readonly OrderGroup[];
}

/** A `snapshot` or `update` of one subscription. */
export type ChannelMessage =
  | OrderBookMessage
  | TradesMessage
  | TickerMessage
  | MarketsMessage
  | OrdersMessage
  | FillsMessage
  | PositionsMessage
  | BalanceMessage
  | OrderGroupsMessage;

/**
 * The stream is connected (and authenticated, when the client has a key). `reconnect` is false
 * for the first connection; after a reconnect every subscription gets a fresh snapshot, each
 * followed by {@link Resynced}.
 */
export interface Connected {
  readonly type: "connected";
  readonly url: string;
  readonly accountId: string | null;
  readonly reconnect: boolean;
  readonly time: Date;
}

/**
 * The connection was lost. `code` is the WebSocket close code (`null` without a close frame: a
 * network failure or a feed gone silent). `reconnecting` tells whether the stream reconnects by
 * itself; when it does not (`4001` key revoked, `4029` too many connections, authentication
 * refused), `error` holds the error that iteration then throws.
 */
export interface Disconnected {
  readonly type: "disconnected";
  readonly code: number | null;
  readonly reason: string;
  readonly reconnecting: boolean;
  readonly error: BallastError | null;
  readonly time: Date;
}

/**
 * A subscription got a fresh snapshot (just delivered) after messages may have been missed:
 * anything derived from its earlier messages should be rebuilt from that snapshot.
 */
export interface Resynced {
  readonly type: "resynced";
  readonly channel: Channel;
  readonly marketId: string | null;
  readonly reason: ResyncReason;
  readonly seq: number;
  readonly exchangeSeq: number;
  readonly time: Date;
}

/** A subscription could not be renewed after a reconnect or gap (the market is gone, say) and was dropped. */
export interface SubscriptionFailed {
  readonly type: "subscription_failed";
  readonly channel: Channel;
  readonly marketId: string | null;
  readonly error: BallastError;
  readonly time: Date;
}

/** One subscription of a heartbeat and the last `seq` the server sent on it. */
export interface SubscriptionSeq {
  readonly channel: string;
  readonly marketId: string | null;
  readonly seq: number;
}

/** The server's heartbeat (yielded only with `heartbeats: true`; the stream uses them either way). */
export interface Heartbeat {
  readonly type: "heartbeat";
  readonly time: Date;
  readonly exchangeSeq: number;
  readonly subscriptions: readonly SubscriptionSeq[];
}

/** The reply to `ping`: the server's time and the stored `exchangeSeq`; every update up to it was read first. */
export interface Pong {
  readonly time: Date;
  readonly exchangeSeq: number;
}

/** A connection event. */
export type StreamEvent = Connected | Disconnected | Resynced | SubscriptionFailed;

/** Everything `for await (const message of stream)` yields. */
export type StreamMessage = ChannelMessage | StreamEvent | Heartbeat;

// ------------------------------------------------------------------------------ parsing

function objects(data: JsonObject, key: string): Json[] {
  const list = data[key];
  if (!Array.isArray(list) || !list.every(isObject)) {
    throw new InvalidResponseError(`a stream message has no list of objects under ${JSON.stringify(key)}`, {
      details: { field: key },
    });
  }
  return list;
}

function int(value: Json | undefined, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new InvalidResponseError(`malformed stream message: ${field} is not a whole number`, { details: { field } });
  }
  return value;
}

function time(value: Json | undefined, field: string): Date {
  const moment = parseDate(value);
  if (moment === null) {
    throw new InvalidResponseError(`malformed stream message: ${field} is not a time`, { details: { field } });
  }
  return moment;
}

function isChannel(value: unknown): value is Channel {
  return (
    typeof value === "string" &&
    ((PUBLIC_CHANNELS as readonly string[]).includes(value) || (PRIVATE_CHANNELS as readonly string[]).includes(value))
  );
}

/** A `snapshot` or `update` frame (decoded JSON) → its typed message; `InvalidResponseError` if malformed. */
export function parseChannelMessage(message: JsonObject): ChannelMessage {
  const data = message.data;
  const type = message.type;
  const channel = message.channel;
  if (!isObject(data) || (type !== "snapshot" && type !== "update") || !isChannel(channel)) {
    throw new InvalidResponseError("malformed stream message", { details: { message } });
  }
  const marketId = message.market_id;
  const common = {
    type,
    marketId: typeof marketId === "string" ? marketId : null,
    seq: int(message.seq, "seq"),
    exchangeSeq: int(message.exchange_seq, "exchange_seq"),
    time: time(message.time, "time"),
    isSnapshot: type === "snapshot",
    data,
  } as const;
  switch (channel) {
    case "orderbook": {
      const depth = data.depth;
      return {
        ...common,
        channel,
        bids: objects(data, "bids").map(parseBookLevel),
        asks: objects(data, "asks").map(parseBookLevel),
        depth: typeof depth === "number" ? depth : null,
      };
    }
    case "trades":
      return { ...common, channel, trades: objects(data, "trades").map(parseTrade) };
    case "ticker":
      return { ...common, channel, ticker: parseTicker(data) };
    case "markets":
      return { ...common, channel, markets: objects(data, "markets").map(parseMarketState) };
    case "orders":
      return { ...common, channel, orders: objects(data, "orders").map(parseOrderUpdate) };
    case "fills":
      return { ...common, channel, fills: objects(data, "fills").map(parseFill) };
    case "positions":
      return { ...common, channel, positions: objects(data, "positions").map(parsePosition) };
    case "balance":
      return { ...common, channel, balance: parseBalance(data) };
    case "order_groups":
      return { ...common, channel, orderGroups: objects(data, "order_groups").map(parseOrderGroup) };
  }
}

export function parseHeartbeat(message: JsonObject): Heartbeat {
  const list = message.subscriptions;
  const subscriptions: SubscriptionSeq[] = [];
  for (const entry of Array.isArray(list) ? list : []) {
    if (isObject(entry) && typeof entry.channel === "string") {
      subscriptions.push({
        channel: entry.channel,
        marketId: typeof entry.market_id === "string" ? entry.market_id : null,
        seq: int(entry.seq, "seq"),
      });
    }
  }
  return {
    type: "heartbeat",
    time: time(message.time, "time"),
    exchangeSeq: int(message.exchange_seq, "exchange_seq"),
    subscriptions,
  };
}

export function parsePong(message: JsonObject): Pong {
  return { time: time(message.time, "time"), exchangeSeq: int(message.exchange_seq, "exchange_seq") };
}
