/**
 * Typed replies. Field names are the API's in camelCase (`filled_size` → `filledSize`); prices
 * and money are canonical decimal strings ({@link DecimalString}), times `Date`s, sizes and
 * counts numbers. Fields a newer server adds are kept in `extra` (the raw JSON, by the API's
 * own names) rather than dropped or rejected.
 */

import { type DecimalString, decimal, tryNormalize } from "./decimal.js";
import { type BallastError, errorFromBody, InvalidResponseError } from "./errors.js";
import { isObject, type Json, type JsonObject } from "./json.js";
import { sha256Hex } from "./signing.js";

// ------------------------------------------------------------------------------ reading JSON

/** Reads one JSON object into a model, remembering which keys it used. */
class Reader {
  readonly #data: JsonObject;
  readonly #model: string;
  readonly #used = new Set<string>();

  constructor(model: string, data: unknown) {
    if (!isObject(data)) {
      throw new InvalidResponseError(`${model}: expected a JSON object`, { details: { model } });
    }
    this.#model = model;
    this.#data = data;
  }

  #fail(key: string, why: string): never {
    throw new InvalidResponseError(`${this.#model}.${key}: ${why}`, {
      details: { model: this.#model, field: key },
    });
  }

  #get(key: string): Json | undefined {
    this.#used.add(key);
    return this.#data[key];
  }

  str(key: string, fallback?: string): string {
    const value = this.#get(key);
    if (typeof value === "string") {
      return value;
    }
    if ((value === undefined || value === null) && fallback !== undefined) {
      return fallback;
    }
    return this.#fail(key, `expected a string, got ${JSON.stringify(value)}`);
  }

  optStr(key: string): string | null {
    const value = this.#get(key);
    if (value === undefined || value === null) {
      return null;
    }
    return typeof value === "string" ? value : this.#fail(key, "expected a string");
  }

  int(key: string, fallback?: number): number {
    const value = this.#get(key);
    if (typeof value === "number" && Number.isInteger(value)) {
      return value;
    }
    if (typeof value === "string" && /^-?\d+(\.0*)?$/.test(value)) {
      return Number.parseInt(value, 10);
    }
    if ((value === undefined || value === null) && fallback !== undefined) {
      return fallback;
    }
    return this.#fail(key, `expected a whole number, got ${JSON.stringify(value)}`);
  }

  optInt(key: string): number | null {
    const value = this.#data[key];
    if (value === undefined || value === null) {
      this.#used.add(key);
      return null;
    }
    return this.int(key);
  }

  dec(key: string, fallback?: DecimalString): DecimalString {
    const value = this.#get(key);
    if ((value === undefined || value === null) && fallback !== undefined) {
      return fallback;
    }
    const text = tryNormalize(value);
    return text ?? this.#fail(key, `expected a decimal number, got ${JSON.stringify(value)}`);
  }

  optDec(key: string): DecimalString | null {
    const value = this.#data[key];
    if (value === undefined || value === null) {
      this.#used.add(key);
      return null;
    }
    return this.dec(key);
  }

  date(key: string): Date {
    const value = this.#get(key);
    const moment = parseDate(value);
    return moment ?? this.#fail(key, `expected a time, got ${JSON.stringify(value)}`);
  }

  optDate(key: string): Date | null {
    const value = this.#data[key];
    if (value === undefined || value === null) {
      this.#used.add(key);
      return null;
    }
    return this.date(key);
  }

  bool(key: string, fallback = false): boolean {
    const value = this.#get(key);
    if (value === undefined || value === null) {
      return fallback;
    }
    return typeof value === "boolean" ? value : this.#fail(key, "expected a boolean");
  }

  optObject(key: string): JsonObject | null {
    const value = this.#get(key);
    if (value === undefined || value === null) {
      return null;
    }
    return isObject(value) ? value : this.#fail(key, "expected an object");
  }

  list<T>(key: string, parse: (item: Json) => T, optional = true): T[] {
    const value = this.#get(key);
    if ((value === undefined || value === null) && optional) {
      return [];
    }
    if (!Array.isArray(value)) {
      return this.#fail(key, "expected a list");
    }
    return value.map(parse);
  }

  strings(key: string): string[] {
    return this.list(key, (item) => {
      if (typeof item !== "string") {
        return this.#fail(key, "expected a list of strings");
      }
      return item;
    });
  }

  nested<T>(key: string, parse: (item: Json) => T): T | null {
    const value = this.#get(key);
    return value === undefined || value === null ? null : parse(value);
  }

  /** The keys this model does not know: kept, by the API's names. */
  extra(): JsonObject {
    const rest: JsonObject = {};
    for (const [key, value] of Object.entries(this.#data)) {
      if (!this.#used.has(key)) {
        rest[key] = value;
      }
    }
    return rest;
  }
}

/** ISO-8601 text or Unix milliseconds as a `Date`; `null` if it is neither. */
export function parseDate(value: unknown): Date | null {
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? null : value;
  }
  if (typeof value === "number" && Number.isFinite(value)) {
    return new Date(value);
  }
  if (typeof value === "string") {
    if (/^-?\d+$/.test(value)) {
      return new Date(Number(value));
    }
    const moment = new Date(value);
    return Number.isNaN(moment.getTime()) ? null : moment;
  }
  return null;
}

/** Anything a model carries besides its known fields. */
export interface HasExtra {
  /** Fields this SDK version does not know, as the server sent them. */
  readonly extra: JsonObject;
}

// ------------------------------------------------------------------------------ market data

export interface ServerTime extends HasExtra {
  readonly serverTime: Date;
  readonly iso: string;
  /** Server time in Unix milliseconds. */
  readonly timestampMs: number;
}

export function parseServerTime(data: unknown): ServerTime {
  const r = new Reader("ServerTime", data);
  const serverTime = r.date("server_time");
  return { serverTime, iso: r.str("iso", ""), timestampMs: serverTime.getTime(), extra: r.extra() };
}

/** A market's trading rules: its price grid, range, sizes and fees. */
export interface MarketRules extends HasExtra {
  readonly tickSize: DecimalString;
  readonly floor: DecimalString;
  readonly cap: DecimalString;
  readonly minSize: number;
  readonly maxOrderSize: number | null;
  readonly maxPosition: number | null;
  readonly makerFeeBps: number;
  readonly takerFeeBps: number;
}

export function parseMarketRules(data: unknown): MarketRules {
  const r = new Reader("MarketRules", data);
  return {
    tickSize: r.dec("tick_size"),
    floor: r.dec("floor"),
    cap: r.dec("cap"),
    minSize: r.int("min_size", 1),
    maxOrderSize: r.optInt("max_order_size"),
    maxPosition: r.optInt("max_position"),
    makerFeeBps: r.int("maker_fee_bps", 0),
    takerFeeBps: r.int("taker_fee_bps", 0),
    extra: r.extra(),
  };
}

/** A market's proposed or final settlement value and its evidence hash. */
export interface Settlement extends HasExtra {
  readonly value: DecimalString | null;
  readonly evidenceHash: string | null;
  readonly proposedAt: Date | null;
  /** When the proposal may no longer be overturned (and may be finalized). */
  readonly disputeEndsAt: Date | null;
  readonly final: boolean;
}

export function parseSettlement(data: unknown): Settlement {
  const r = new Reader("Settlement", data);
  return {
    value: r.optDec("value"),
    evidenceHash: r.optStr("evidence_hash"),
    proposedAt: r.optDate("proposed_at"),
    disputeEndsAt: r.optDate("dispute_ends_at"),
    final: r.bool("final"),
    extra: r.extra(),
  };
}

/** A market's series (what it recurs in) or event (what it is resolved with). */
export interface MarketGroupRef {
  readonly id: string;
  readonly title: string;
}

export function parseMarketGroupRef(data: unknown): MarketGroupRef {
  const r = new Reader("MarketGroupRef", data);
  return { id: r.str("id"), title: r.str("title", "") };
}

/** A series or an event, as `GET /series` and `GET /events` list them. */
export interface MarketGroup extends HasExtra {
  readonly id: string;
  readonly title: string | null;
  /** Its markets, oldest first. */
  readonly marketIds: string[];
}

export function parseMarketGroup(data: unknown): MarketGroup {
  const r = new Reader("MarketGroup", data);
  return { id: r.str("id"), title: r.optStr("title"), marketIds: r.strings("market_ids"), extra: r.extra() };
}

/** A market, as `GET /markets` and `GET /markets/{id}` describe it. */
export interface Market extends HasExtra {
  readonly id: string;
  /** The same as `id`. */
  readonly marketId: string;
  readonly name: string;
  readonly type: string;
  readonly status: string;
  readonly question: string | null;
  readonly description: string | null;
  readonly resolutionSource: string | null;
  readonly settlementDate: Date | null;
  readonly closeTime: Date | null;
  readonly lastPrice: DecimalString | null;
  readonly bid: DecimalString | null;
  readonly ask: DecimalString | null;
  /** The mid of the best bid and ask; null when a side is empty. */
  readonly midpoint: DecimalString | null;
  /** `lastPrice` minus the last trade price 24 h ago; null without a trade by then. */
  readonly change24h: DecimalString | null;
  readonly volume24h: number;
  readonly openInterest: number;
  readonly rules: MarketRules | null;
  readonly settlement: Settlement | null;
  readonly category: string | null;
  readonly tags: string[];
  readonly series: MarketGroupRef | null;
  readonly event: MarketGroupRef | null;
}

export function parseMarket(data: unknown): Market {
  const r = new Reader("Market", data);
  const id = r.str("id");
  return {
    id,
    marketId: id,
    name: r.str("name", ""),
    type: r.str("type", "binary"),
    status: r.str("status", "open"),
    question: r.optStr("question"),
    description: r.optStr("description"),
    resolutionSource: r.optStr("resolution_source"),
    settlementDate: r.optDate("settlement_date"),
    closeTime: r.optDate("close_time"),
    lastPrice: r.optDec("last_price"),
    bid: r.optDec("bid"),
    ask: r.optDec("ask"),
    midpoint: r.optDec("midpoint"),
    change24h: r.optDec("change_24h"),
    volume24h: r.int("volume_24h", 0),
    openInterest: r.int("open_interest", 0),
    rules: r.nested("rules", parseMarketRules),
    settlement: r.nested("settlement", parseSettlement),
    category: r.optStr("category"),
    tags: r.strings("tags"),
    series: r.nested("series", parseMarketGroupRef),
    event: r.nested("event", parseMarketGroupRef),
    extra: r.extra(),
  };
}

/** One aggregated price level. */
export interface BookLevel {
  readonly price: DecimalString;
  readonly size: number;
}

export function parseBookLevel(data: unknown): BookLevel {
  // Books are long and read often: no Reader here, the same checks by hand.
  const price = isObject(data) ? tryNormalize(data.price) : null;
  const size = isObject(data) ? data.size : undefined;
  if (price === null || typeof size !== "number" || !Number.isInteger(size)) {
    throw new InvalidResponseError(`BookLevel: expected {"price", "size"}, got ${JSON.stringify(data)}`, {
      details: { model: "BookLevel" },
    });
  }
  return { price, size };
}

/** Best bid, best ask, their spread and mid, of a book's sorted levels. */
export interface BookTop {
  readonly bestBid: DecimalString | null;
  readonly bestAsk: DecimalString | null;
  readonly spread: DecimalString | null;
  readonly mid: DecimalString | null;
}

/** @internal */
export function bookTop(bids: readonly BookLevel[], asks: readonly BookLevel[]): BookTop {
  const bestBid = bids[0]?.price ?? null;
  const bestAsk = asks[0]?.price ?? null;
  const both = bestBid !== null && bestAsk !== null;
  return {
    bestBid,
    bestAsk,
    spread: both ? decimal.sub(bestAsk, bestBid) : null,
    mid: both ? decimal.mul(decimal.add(bestBid, bestAsk), "0.5") : null, // exact: one more decimal at most
  };
}

/** An aggregated book: bids best (highest) first, asks best (lowest) first. */
export interface OrderBook extends BookTop, HasExtra {
  readonly marketId: string;
  readonly timestamp: Date;
  /** The exchange event sequence the book holds at (the stream's `exchange_seq`). */
  readonly seq: number | null;
  readonly bids: readonly BookLevel[];
  readonly asks: readonly BookLevel[];
}

export function parseOrderBook(data: unknown): OrderBook {
  const r = new Reader("OrderBook", data);
  const bids = r.list("bids", parseBookLevel);
  const asks = r.list("asks", parseBookLevel);
  return {
    marketId: r.str("market_id"),
    timestamp: r.date("timestamp"),
    seq: r.optInt("seq"),
    bids,
    asks,
    ...bookTop(bids, asks),
    extra: r.extra(),
  };
}

/** A public trade. */
export interface Trade extends HasExtra {
  readonly tradeId: string;
  readonly marketId: string;
  readonly price: DecimalString;
  readonly size: number;
  readonly takerSide: string;
  readonly createdAt: Date;
}

export function parseTrade(data: unknown): Trade {
  const r = new Reader("Trade", data);
  return {
    tradeId: r.str("trade_id"),
    marketId: r.str("market_id"),
    price: r.dec("price"),
    size: r.int("size"),
    takerSide: r.str("taker_side"),
    createdAt: r.date("created_at"),
    extra: r.extra(),
  };
}

/** An OHLCV candle starting at `start`. */
export interface Candle extends HasExtra {
  readonly start: Date;
  readonly open: DecimalString;
  readonly high: DecimalString;
  readonly low: DecimalString;
  readonly close: DecimalString;
  readonly volume: number;
}

export function parseCandle(data: unknown): Candle {
  const r = new Reader("Candle", data);
  return {
    start: r.date("start"),
    open: r.dec("open"),
    high: r.dec("high"),
    low: r.dec("low"),
    close: r.dec("close"),
    volume: r.int("volume"),
    extra: r.extra(),
  };
}

// ------------------------------------------------------------------------------ settlement

/**
 * One settlement proposal with its evidence, so anyone can check its hash: `evidenceHash` is
 * the hex SHA-256 of `evidenceCanonical`, the evidence as RFC 8785 canonical JSON; `evidence`
 * is the same evidence decoded (decimals as strings). `outcome` is `proposed`, `overturned` or
 * `finalized`.
 */
export interface SettlementProposal extends HasExtra {
  readonly value: DecimalString;
  readonly evidenceHash: string;
  readonly evidence: JsonObject | null;
  readonly evidenceCanonical: string | null;
  readonly proposer: string;
  readonly proposedAt: Date | null;
  readonly disputeEndsAt: Date | null;
  readonly outcome: string;
  readonly decidedBy: string | null;
  readonly decidedAt: Date | null;
}

export function parseSettlementProposal(data: unknown): SettlementProposal {
  const r = new Reader("SettlementProposal", data);
  return {
    value: r.dec("value"),
    evidenceHash: r.str("evidence_hash"),
    evidence: r.optObject("evidence"),
    evidenceCanonical: r.optStr("evidence_canonical"),
    proposer: r.str("proposer", ""),
    proposedAt: r.optDate("proposed_at"),
    disputeEndsAt: r.optDate("dispute_ends_at"),
    outcome: r.str("outcome", "proposed"),
    decidedBy: r.optStr("decided_by"),
    decidedAt: r.optDate("decided_at"),
    extra: r.extra(),
  };
}

/** `sha256(evidenceCanonical) === evidenceHash` (false without the evidence). */
export async function proposalHashMatches(proposal: SettlementProposal): Promise<boolean> {
  if (proposal.evidenceCanonical === null) {
    return false;
  }
  const digest = await sha256Hex(proposal.evidenceCanonical);
  return digest === proposal.evidenceHash.trim().toLowerCase();
}

/**
 * Whether a proposal's published hash holds: `evidenceCanonical` hashes to `evidenceHash`, and
 * `evidence` is what `evidenceCanonical` says.
 */
export async function verifyProposal(proposal: SettlementProposal, decode: (text: string) => Json): Promise<boolean> {
  if (!(await proposalHashMatches(proposal)) || proposal.evidenceCanonical === null) {
    return false;
  }
  let canonical: Json;
  try {
    canonical = decode(proposal.evidenceCanonical);
  } catch {
    return false;
  }
  return proposal.evidence === null || sameJson(canonical, proposal.evidence);
}

/**
 * Equal JSON values, numbers by value (`1` equals `1.0`; decimals decode as their text, so
 * `"52.30"` equals `"52.3"` too), booleans never numbers.
 */
function sameJson(a: Json, b: Json): boolean {
  if (typeof a === "number" || typeof b === "number") {
    const x = tryNormalize(a);
    return x !== null && x === tryNormalize(b);
  }
  if (typeof a === "string" && typeof b === "string") {
    if (a === b) {
      return true;
    }
    const x = tryNormalize(a);
    return x !== null && x === tryNormalize(b);
  }
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i] as Json));
  }
  if (isObject(a)) {
    if (!isObject(b)) {
      return false;
    }
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length && keys.every((key) => key in b && sameJson(a[key] as Json, b[key] as Json))
    );
  }
  return a === b;
}

/**
 * `GET /markets/{id}/settlement`: the current proposal and every one before it (oldest first,
 * overturned ones included), each checkable with {@link SettlementRecord.verify}.
 */
export class SettlementRecord implements HasExtra {
  readonly marketId: string;
  readonly status: string;
  readonly hashAlgorithm: string;
  readonly current: SettlementProposal | null;
  readonly proposals: readonly SettlementProposal[];
  readonly extra: JsonObject;
  readonly #decode: (text: string) => Json;

  constructor(data: unknown, decode: (text: string) => Json) {
    const r = new Reader("SettlementRecord", data);
    this.marketId = r.str("market_id");
    this.status = r.str("status", "");
    this.hashAlgorithm = r.str("hash_algorithm", "");
    this.current = r.nested("current", parseSettlementProposal);
    this.proposals = r.list("proposals", parseSettlementProposal);
    this.extra = r.extra();
    this.#decode = decode;
  }

  #every(): SettlementProposal[] {
    return [...this.proposals, ...(this.current === null ? [] : [this.current])];
  }

  /** Every proposal's `evidenceCanonical` hashes to its `evidenceHash`. */
  async hashMatches(): Promise<boolean> {
    const results = await Promise.all(this.#every().map(proposalHashMatches));
    return results.every(Boolean);
  }

  /** Each proposal's hash holds and its `evidence` is its canonical text (true with none yet). */
  async verify(): Promise<boolean> {
    const results = await Promise.all(this.#every().map((p) => verifyProposal(p, this.#decode)));
    return results.every(Boolean);
  }
}

// ------------------------------------------------------------------------------ trading

/** A trade an order made on arrival (in `Order.fills` of a new order). */
export interface OrderFill extends HasExtra {
  readonly tradeId: string;
  readonly price: DecimalString;
  readonly size: number;
  readonly fee: DecimalString;
}

export function parseOrderFill(data: unknown): OrderFill {
  const r = new Reader("OrderFill", data);
  return {
    tradeId: r.str("trade_id"),
    price: r.dec("price"),
    size: r.int("size"),
    fee: r.dec("fee", "0"),
    extra: r.extra(),
  };
}

/**
 * An order. `id` is the same as `orderId`. `fills` lists what a new order traded on arrival; it
 * is empty on orders read back later (and on a `clientOrderId` retry, which returns the order as
 * it is now).
 */
export interface Order extends HasExtra {
  readonly id: string;
  readonly orderId: string;
  readonly clientOrderId: string | null;
  /** The order group it was placed in, if any. */
  readonly orderGroupId: string | null;
  readonly marketId: string;
  readonly side: string;
  readonly type: string;
  /** The same as `type`: `limit` or `market`. */
  readonly orderType: string;
  readonly price: DecimalString | null;
  readonly size: number;
  readonly filledSize: number;
  readonly remainingSize: number;
  readonly status: string;
  readonly cancelReason: string | null;
  readonly timeInForce: string | null;
  readonly expireAt: Date | null;
  readonly postOnly: boolean;
  readonly reduceOnly: boolean;
  readonly stp: string | null;
  readonly createdAt: Date | null;
  readonly updatedAt: Date | null;
  readonly fills: readonly OrderFill[];
  readonly isOpen: boolean;
}

function readOrder(r: Reader): Omit<Order, "extra"> {
  const orderId = r.str("order_id");
  const type = r.str("type", "limit");
  const status = r.str("status", "");
  return {
    id: orderId,
    orderId,
    clientOrderId: r.optStr("client_order_id"),
    orderGroupId: r.optStr("order_group_id"),
    marketId: r.str("market_id", ""),
    side: r.str("side", ""),
    type,
    orderType: type,
    price: r.optDec("price"),
    size: r.int("size", 0),
    filledSize: r.int("filled_size", 0),
    remainingSize: r.int("remaining_size", 0),
    status,
    cancelReason: r.optStr("cancel_reason"),
    timeInForce: r.optStr("time_in_force"),
    expireAt: r.optDate("expire_at"),
    postOnly: r.bool("post_only"),
    reduceOnly: r.bool("reduce_only"),
    stp: r.optStr("stp"),
    createdAt: r.optDate("created_at"),
    updatedAt: r.optDate("updated_at"),
    fills: r.list("fills", parseOrderFill),
    isOpen: status === "open",
  };
}

export function parseOrder(data: unknown): Order {
  const r = new Reader("Order", data);
  const order = readOrder(r);
  return { ...order, extra: r.extra() };
}

/** What a cancel-all canceled. */
export interface CanceledOrders extends HasExtra {
  readonly canceled: readonly string[];
  readonly count: number;
}

export function parseCanceledOrders(data: unknown): CanceledOrders {
  const r = new Reader("CanceledOrders", data);
  return { canceled: r.strings("canceled"), count: r.int("count", 0), extra: r.extra() };
}

/** The dead-man switch of this API key: armed until `deadline` unless another heartbeat comes. */
export interface DeadManSwitch extends HasExtra {
  readonly armed: boolean;
  readonly timeoutS: number;
  readonly deadline: Date | null;
}

export function parseDeadManSwitch(data: unknown): DeadManSwitch {
  const r = new Reader("DeadManSwitch", data);
  return {
    armed: r.bool("armed"),
    timeoutS: r.int("timeout_s", 0),
    deadline: r.optDate("deadline"),
    extra: r.extra(),
  };
}

/**
 * An order group: its orders may fill `maxFilledSize` contracts within a rolling `windowS`;
 * reaching it cancels them and refuses new ones until a reset (`status` `triggered`).
 */
export interface OrderGroup extends HasExtra {
  readonly id: string;
  readonly orderGroupId: string;
  readonly status: string;
  readonly triggered: boolean;
  readonly maxFilledSize: number;
  readonly windowS: number;
  readonly filledInWindow: number;
  readonly openOrders: number;
  readonly createdAt: Date | null;
  readonly triggeredAt: Date | null;
  readonly resetAt: Date | null;
  /** `triggered` on the stream's `order_groups` channel. */
  readonly event: string | null;
}

export function parseOrderGroup(data: unknown): OrderGroup {
  const r = new Reader("OrderGroup", data);
  const orderGroupId = r.str("order_group_id");
  const status = r.str("status", "active");
  return {
    id: orderGroupId,
    orderGroupId,
    status,
    triggered: status === "triggered",
    maxFilledSize: r.int("max_filled_size", 0),
    windowS: r.int("window_s", 0),
    filledInWindow: r.int("filled_in_window", 0),
    openOrders: r.int("open_orders", 0),
    createdAt: r.optDate("created_at"),
    triggeredAt: r.optDate("triggered_at"),
    resetAt: r.optDate("reset_at"),
    event: r.optStr("event"),
    extra: r.extra(),
  };
}

/** A deleted order group and the orders its deletion canceled. */
export interface DeletedOrderGroup extends HasExtra {
  readonly orderGroupId: string;
  readonly deleted: boolean;
  readonly canceled: readonly string[];
  readonly count: number;
}

export function parseDeletedOrderGroup(data: unknown): DeletedOrderGroup {
  const r = new Reader("DeletedOrderGroup", data);
  return {
    orderGroupId: r.str("order_group_id"),
    deleted: r.bool("deleted"),
    canceled: r.strings("canceled"),
    count: r.int("count", 0),
    extra: r.extra(),
  };
}

/** Where an open order waits at its price: what rests before it, by time priority. */
export interface QueuePosition extends HasExtra {
  readonly orderId: string;
  readonly price: DecimalString;
  readonly contractsAhead: number;
  readonly ordersAhead: number;
}

export function parseQueuePosition(data: unknown): QueuePosition {
  const r = new Reader("QueuePosition", data);
  return {
    orderId: r.str("order_id"),
    price: r.dec("price"),
    contractsAhead: r.int("contracts_ahead", 0),
    ordersAhead: r.int("orders_ahead", 0),
    extra: r.extra(),
  };
}

/**
 * One order of a batch: `order` when it was placed (status 201, or 200 for a `clientOrderId`
 * retry), else `error`, the error that order alone would have thrown.
 */
export interface BatchResult {
  readonly status: number;
  readonly order: Order | null;
  readonly error: BallastError | null;
  readonly ok: boolean;
}

export function parseBatchResult(data: unknown): BatchResult {
  if (!isObject(data)) {
    throw new InvalidResponseError("BatchResult: expected a JSON object", { details: { model: "BatchResult" } });
  }
  const status = typeof data.status === "number" ? data.status : 0;
  if (isObject(data.order)) {
    return { status, order: parseOrder(data.order), error: null, ok: true };
  }
  return { status, order: null, error: errorFromBody(status, { error: data.error ?? null }), ok: false };
}

// ------------------------------------------------------------------------------ account

/** `totalBalance = available + reserved`, in `currency` (USDC). */
export interface Balance extends HasExtra {
  readonly totalBalance: DecimalString;
  readonly available: DecimalString;
  readonly reserved: DecimalString;
  readonly currency: string;
}

export function parseBalance(data: unknown): Balance {
  const r = new Reader("Balance", data);
  return {
    totalBalance: r.dec("total_balance"),
    available: r.dec("available"),
    reserved: r.dec("reserved"),
    currency: r.str("currency", "USDC"),
    extra: r.extra(),
  };
}

/** What the sandbox faucet deposited, today's total for the account and the new balance. */
export interface FaucetGrant extends HasExtra {
  readonly amount: DecimalString;
  readonly grantedToday: DecimalString;
  readonly dailyCap: DecimalString;
  readonly balance: Balance;
}

export function parseFaucetGrant(data: unknown): FaucetGrant {
  const r = new Reader("FaucetGrant", data);
  const balance = r.nested("balance", parseBalance);
  if (balance === null) {
    throw new InvalidResponseError("FaucetGrant.balance: missing", { details: { model: "FaucetGrant" } });
  }
  return {
    amount: r.dec("amount"),
    grantedToday: r.dec("granted_today"),
    dailyCap: r.dec("daily_cap"),
    balance,
    extra: r.extra(),
  };
}

/** A net position: `size` is signed (negative is short). */
export interface Position extends HasExtra {
  readonly marketId: string;
  /** `open`, or `settled`: as it stood when its market settled, marked at the final value. */
  readonly status: string;
  readonly size: number;
  readonly averagePrice: DecimalString | null;
  readonly currentPrice: DecimalString | null;
  readonly unrealizedPnl: DecimalString;
  readonly realizedPnl: DecimalString;
  readonly marginUsed: DecimalString;
  /** What a settled position was paid (null while open). */
  readonly payout: DecimalString | null;
  readonly settledAt: Date | null;
}

export function parsePosition(data: unknown): Position {
  const r = new Reader("Position", data);
  return {
    marketId: r.str("market_id"),
    status: r.str("status", "open"),
    size: r.int("size"),
    averagePrice: r.optDec("average_price"),
    currentPrice: r.optDec("current_price"),
    unrealizedPnl: r.dec("unrealized_pnl", "0"),
    realizedPnl: r.dec("realized_pnl", "0"),
    marginUsed: r.dec("margin_used", "0"),
    payout: r.optDec("payout"),
    settledAt: r.optDate("settled_at"),
    extra: r.extra(),
  };
}

/**
 * A position a settlement paid out: `size` held (signed), `costBasis` its locked collateral,
 * `payout` what the settlement paid, `settlementPnl = payout - costBasis`, `realizedPnl` the
 * position's realized PnL in the market (fees aside).
 */
export interface SettledPosition extends HasExtra {
  readonly marketId: string;
  readonly finalValue: DecimalString;
  readonly size: number;
  readonly costBasis: DecimalString;
  readonly payout: DecimalString;
  readonly settlementPnl: DecimalString;
  readonly realizedPnl: DecimalString;
  readonly settledAt: Date | null;
}

export function parseSettledPosition(data: unknown): SettledPosition {
  const r = new Reader("SettledPosition", data);
  return {
    marketId: r.str("market_id"),
    finalValue: r.dec("final_value"),
    size: r.int("size"),
    costBasis: r.dec("cost_basis", "0"),
    payout: r.dec("payout", "0"),
    settlementPnl: r.dec("settlement_pnl", "0"),
    realizedPnl: r.dec("realized_pnl", "0"),
    settledAt: r.optDate("settled_at"),
    extra: r.extra(),
  };
}

/** Fees paid and rebates earned in one UTC day or month (`netFees` = fees - rebates). */
export interface FeePeriod extends HasExtra {
  readonly periodStart: Date;
  readonly periodEnd: Date;
  readonly feesPaid: DecimalString;
  readonly rebatesEarned: DecimalString;
  readonly netFees: DecimalString;
  readonly feeCount: number;
  readonly rebateCount: number;
}

export function parseFeePeriod(data: unknown): FeePeriod {
  const r = new Reader("FeePeriod", data);
  return {
    periodStart: r.date("period_start"),
    periodEnd: r.date("period_end"),
    feesPaid: r.dec("fees_paid", "0"),
    rebatesEarned: r.dec("rebates_earned", "0"),
    netFees: r.dec("net_fees", "0"),
    feeCount: r.int("fee_count", 0),
    rebateCount: r.int("rebate_count", 0),
    extra: r.extra(),
  };
}

/** One of the account's fills. */
export interface Fill extends HasExtra {
  readonly tradeId: string;
  readonly orderId: string;
  readonly marketId: string;
  readonly side: string;
  readonly price: DecimalString;
  readonly size: number;
  readonly liquidity: string;
  readonly fee: DecimalString;
  readonly createdAt: Date | null;
}

export function parseFill(data: unknown): Fill {
  const r = new Reader("Fill", data);
  return {
    tradeId: r.str("trade_id"),
    orderId: r.str("order_id"),
    marketId: r.str("market_id"),
    side: r.str("side"),
    price: r.dec("price"),
    size: r.int("size"),
    liquidity: r.str("liquidity", ""),
    fee: r.dec("fee", "0"),
    createdAt: r.optDate("created_at"),
    extra: r.extra(),
  };
}

/** One movement of the account's money (double entry: `debit` and `credit` accounts). */
export interface LedgerEntry extends HasExtra {
  readonly entryId: number;
  readonly kind: string;
  readonly amount: DecimalString;
  readonly debit: string;
  readonly credit: string;
  readonly marketId: string | null;
  readonly ref: string | null;
  readonly createdAt: Date | null;
}

export function parseLedgerEntry(data: unknown): LedgerEntry {
  const r = new Reader("LedgerEntry", data);
  return {
    entryId: r.int("entry_id"),
    kind: r.str("kind"),
    amount: r.dec("amount"),
    debit: r.str("debit", ""),
    credit: r.str("credit", ""),
    marketId: r.optStr("market_id"),
    ref: r.optStr("ref"),
    createdAt: r.optDate("created_at"),
    extra: r.extra(),
  };
}

/** The `X-RateLimit-*` headers of the last response. */
export interface RateLimit {
  readonly limit: number;
  readonly remaining: number;
  /** When the current window ends. */
  readonly reset: Date;
}

// ------------------------------------------------------------------------------ stream data

/** A market's best bid and ask, midpoint, last trade price, 24-hour change and volume. */
export interface Ticker extends HasExtra {
  readonly bid: DecimalString | null;
  readonly ask: DecimalString | null;
  /** Of the best bid and ask; null when a side is empty. */
  readonly midpoint: DecimalString | null;
  readonly lastPrice: DecimalString | null;
  /** `lastPrice` minus the last trade price a day ago; null without a trade then. */
  readonly change24h: DecimalString | null;
  readonly volume24h: number;
}

export function parseTicker(data: unknown): Ticker {
  const r = new Reader("Ticker", data);
  return {
    bid: r.optDec("bid"),
    ask: r.optDec("ask"),
    midpoint: r.optDec("midpoint"),
    lastPrice: r.optDec("last_price"),
    change24h: r.optDec("change_24h"),
    volume24h: r.int("volume_24h", 0),
    extra: r.extra(),
  };
}

/**
 * A market's state on the `markets` channel; `event` on updates: `listed`, `opened`, `halted`,
 * `resumed`, `closed`, `resolving`, `overturned`, `settled`.
 */
export interface MarketState extends HasExtra {
  readonly marketId: string;
  readonly status: string;
  readonly closeTime: Date | null;
  readonly settlement: Settlement | null;
  readonly event: string | null;
}

export function parseMarketState(data: unknown): MarketState {
  const r = new Reader("MarketState", data);
  return {
    marketId: r.str("market_id"),
    status: r.str("status"),
    closeTime: r.optDate("close_time"),
    settlement: r.nested("settlement", parseSettlement),
    event: r.optStr("event"),
    extra: r.extra(),
  };
}

/**
 * An order as it stood right after `event` (`accepted`, `filled`, `amended`, `canceled`,
 * `expired`); `null` in the `orders` snapshot.
 */
export interface OrderUpdate extends Order {
  readonly event: string | null;
}

export function parseOrderUpdate(data: unknown): OrderUpdate {
  const r = new Reader("OrderUpdate", data);
  const order = readOrder(r);
  const event = r.optStr("event");
  return { ...order, event, extra: r.extra() };
}
