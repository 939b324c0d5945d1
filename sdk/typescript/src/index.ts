/**
 * `@ballast/sdk`: the TypeScript SDK for the Ballast exchange.
 *
 * ```ts
 * import { BallastClient } from "@ballast/sdk";
 *
 * const client = new BallastClient({ apiKey: "bmkt_live_abc123", apiSecret: "bmkt_secret_xyz789" });
 * const markets = await client.getMarkets();
 * const order = await client.placeOrder({ marketId: "suez-apr2025", side: "buy", orderType: "limit", price: 0.87, size: 1000 });
 * console.log(`Order placed: ${order.id}`);
 * ```
 */

export {
  BallastClient,
  type BallastClientOptions,
  type CandlesQuery,
  deriveStreamUrl,
  ENVIRONMENTS,
  type Environment,
  type FeesQuery,
  type FetchInit,
  type FetchLike,
  type FetchResponse,
  type FillsQuery,
  type LedgerQuery,
  MAX_PAGE_SIZE,
  type OrdersQuery,
  type PageOptions,
  type PositionStatus,
  type SettlementsQuery,
  USER_AGENT,
} from "./client.js";
export { type DecimalString, decimal, type Numeric, type RoundingMode } from "./decimal.js";
export {
  AccountExistsError,
  AccountNotFoundError,
  AuthenticationError,
  BallastError,
  type BallastErrorOptions,
  ConflictError,
  DuplicateClientOrderIdError,
  errorClass,
  errorFromBody,
  FaucetLimitError,
  ForbiddenError,
  InsufficientBalanceError,
  InternalServerError,
  InvalidPriceError,
  InvalidRequestError,
  InvalidResponseError,
  InvalidSettlementError,
  InvalidSignatureError,
  InvalidTransitionError,
  KeyNotFoundError,
  MarketClosedError,
  MarketExistsError,
  MarketNotFoundError,
  MethodNotAllowedError,
  NetworkError,
  NotFoundError,
  OrderNotCancelableError,
  OrderNotFoundError,
  OrderRejectedError,
  OrderSizeTooLargeError,
  OrderSizeTooSmallError,
  PayloadTooLargeError,
  PositionLimitExceededError,
  PostOnlyWouldCrossError,
  RateLimitError,
  ReduceOnlyWouldIncreaseError,
  ServerError,
  ServiceUnavailableError,
  TimestampExpiredError,
  TooManyConnectionsError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from "./errors.js";
export { decodeJson, encodeJson, type Json, type JsonObject } from "./json.js";
export type {
  BalanceMessage,
  Channel,
  ChannelMessage,
  Connected,
  Disconnected,
  FillsMessage,
  Heartbeat,
  MarketsMessage,
  OrderBookMessage,
  OrdersMessage,
  Pong,
  PositionsMessage,
  PrivateChannel,
  PublicChannel,
  Resynced,
  ResyncReason,
  StreamEvent,
  StreamMessage,
  SubscriptionFailed,
  SubscriptionSeq,
  TickerMessage,
  TradesMessage,
} from "./messages.js";
export { PRIVATE_CHANNELS, PUBLIC_CHANNELS } from "./messages.js";
export {
  type Balance,
  type BatchResult,
  type BookLevel,
  type BookTop,
  type CanceledOrders,
  type Candle,
  type DeadManSwitch,
  type FaucetGrant,
  type FeePeriod,
  type Fill,
  type HasExtra,
  type LedgerEntry,
  type Market,
  type MarketRules,
  type MarketState,
  type Order,
  type OrderBook,
  type OrderFill,
  type OrderUpdate,
  type Position,
  type QueuePosition,
  type RateLimit,
  type ServerTime,
  type SettledPosition,
  type Settlement,
  type SettlementProposal,
  SettlementRecord,
  type Ticker,
  type Trade,
} from "./models.js";
export { LocalOrderBook } from "./orderbook.js";
export {
  type AmendOrderParams,
  type BatchAmendParams,
  type CandleInterval,
  checkOrder,
  type MarketStatus,
  type MarketType,
  newClientOrderId,
  type OrderStatus,
  type OrderType,
  type PlaceOrderParams,
  type SelfTradePrevention,
  type Side,
  type TimeInForce,
  type TimeLike,
} from "./orders.js";
export { RetryPolicy } from "./retry.js";
export { SIGNATURE_HEADER, Signer, sign, TIMESTAMP_HEADER } from "./signing.js";
export {
  CLOSE_REVOKED,
  CLOSE_SLOW_CONSUMER,
  CLOSE_TOO_MANY_CONNECTIONS,
  Stream,
  type StreamOptions,
  type Subscription,
} from "./stream.js";
export { VERSION } from "./version.js";
