/**
 * `BallastClient`: every REST endpoint, signed, with safe retries and checks before sending.
 */

import type { Numeric } from "./decimal.js";
import {
  type BallastError,
  errorFromBody,
  ForbiddenError,
  InvalidResponseError,
  InvalidSignatureError,
  MarketNotFoundError,
  NetworkError,
  TimestampExpiredError,
} from "./errors.js";
import { decodeJson, encodeJson, isObject, type Json, type JsonObject } from "./json.js";
import {
  type Balance,
  type BatchResult,
  type CanceledOrders,
  type Candle,
  type DeadManSwitch,
  type DeletedOrderGroup,
  type FaucetGrant,
  type FeePeriod,
  type Fill,
  type LedgerEntry,
  type Market,
  type MarketGroup,
  type MarketRules,
  type Order,
  type OrderBook,
  type OrderGroup,
  type Position,
  parseBalance,
  parseBatchResult,
  parseCanceledOrders,
  parseCandle,
  parseDeadManSwitch,
  parseDeletedOrderGroup,
  parseFaucetGrant,
  parseFeePeriod,
  parseFill,
  parseLedgerEntry,
  parseMarket,
  parseMarketGroup,
  parseOrder,
  parseOrderBook,
  parseOrderGroup,
  parsePosition,
  parseQueuePosition,
  parseServerTime,
  parseSettledPosition,
  parseTrade,
  type QueuePosition,
  type RateLimit,
  type ServerTime,
  type SettledPosition,
  SettlementRecord,
  type Trade,
} from "./models.js";
import {
  type AmendOrderParams,
  amendBody,
  type BatchAmendParams,
  type CandleInterval,
  type CreateOrderGroupParams,
  checkOrder,
  type MarketStatus,
  type MarketType,
  type OrderStatus,
  orderBody,
  orderGroupBody,
  type PlaceOrderParams,
  priceText,
  type TimeLike,
  timeParam,
} from "./orders.js";
import { RetryPolicy, sleep } from "./retry.js";
import { SIGNATURE_HEADER, Signer, TIMESTAMP_HEADER } from "./signing.js";
import { Stream, type StreamHost, type StreamOptions } from "./stream.js";
import { VERSION } from "./version.js";

export type Environment = "production" | "sandbox" | "local";

/** The spec's base URLs, and the local server `make run` starts. */
export const ENVIRONMENTS: Readonly<Record<Environment, { readonly rest: string; readonly stream: string }>> = {
  production: { rest: "https://api.ballastmarkets.com/v1", stream: "wss://stream.ballastmarkets.com" },
  sandbox: { rest: "https://api-sandbox.ballastmarkets.com/v1", stream: "wss://stream-sandbox.ballastmarkets.com" },
  local: { rest: "http://127.0.0.1:8000/v1", stream: "ws://127.0.0.1:8000/stream" },
};

export const USER_AGENT = `ballast-sdk-typescript/${VERSION}`;
export const MAX_PAGE_SIZE = 1000;
/** How far (ms) the server accepts a timestamp from its clock. */
const TIMESTAMP_WINDOW_MS = 30_000;

/** The response part of `fetch` the client reads. */
export interface FetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** The request part of `fetch` the client uses. */
export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** A `fetch` (the global one by default). */
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponse>;

export interface BallastClientOptions {
  /** `bmkt_live_…` or `bmkt_test_…`; else `BALLAST_API_KEY` (Node). Market data needs none. */
  apiKey?: string;
  /** `bmkt_secret_…`; else `BALLAST_API_SECRET` (Node). */
  apiSecret?: string;
  /** `production` (default), `sandbox` or `local` (`http://127.0.0.1:8000/v1`). */
  environment?: Environment;
  /** A server of your own: `http://HOST:PORT/v1`. */
  baseUrl?: string;
  /** The stream's URL; derived from `baseUrl` or `environment` when not given. */
  streamUrl?: string;
  /** Per request, in milliseconds (10,000). */
  timeoutMs?: number;
  /** Retries of one call: 429s, and 5xx or network failures of calls safe to repeat (3). */
  maxRetries?: number;
  /** The longest `Retry-After` it waits before giving up with `RateLimitError` (60,000 ms). */
  maxRetryWaitMs?: number;
  /** Check prices and sizes against the market's rules before sending (true). */
  validateOrders?: boolean;
  /** Your own `fetch` (proxies, instrumentation); the global one by default. */
  fetch?: FetchLike;
}

/** Paging options of the list methods. */
export interface PageOptions {
  /** Stop after this many items (the latest ones); all of them by default. */
  limit?: number;
  /** Items per request, 1–1,000 (1,000). */
  pageSize?: number;
}

export interface OrdersQuery extends PageOptions {
  status?: OrderStatus;
  marketId?: string;
  startDate?: TimeLike;
  endDate?: TimeLike;
}

export interface FillsQuery extends PageOptions {
  marketId?: string;
  startDate?: TimeLike;
  endDate?: TimeLike;
}

export interface LedgerQuery extends PageOptions {
  kind?: string;
  startDate?: TimeLike;
  endDate?: TimeLike;
}

/** `GET /markets` filters, each optional. */
export interface MarketsQuery {
  status?: MarketStatus;
  type?: MarketType;
  /** Any case. */
  category?: string;
  tag?: string;
  /** A series id. */
  series?: string;
  /** An event id. */
  event?: string;
  /** Text in the name or question, any case. */
  q?: string;
  closeBefore?: TimeLike;
  closeAfter?: TimeLike;
}

export interface SettlementsQuery extends PageOptions {
  marketId?: string;
  startDate?: TimeLike;
  endDate?: TimeLike;
}

export interface FeesQuery extends PageOptions {
  startDate?: TimeLike;
  endDate?: TimeLike;
  /** `day` (the default) or `month`, in UTC. */
  period?: "day" | "month";
}

export type PositionStatus = "open" | "settled" | "all";

export interface CandlesQuery {
  interval?: CandleInterval;
  start?: TimeLike;
  end?: TimeLike;
  limit?: number;
}

type Auth = "private" | "optional" | "none";
type Params = Record<string, string>;

interface RequestSpec {
  params?: Params;
  body?: JsonObject;
  auth: Auth;
  idempotent: boolean;
}

function env(name: string): string | undefined {
  const process = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const value = process?.env?.[name];
  return value === undefined || value === "" ? undefined : value;
}

function isEnvironment(name: string): name is Environment {
  return name === "production" || name === "sandbox" || name === "local";
}

/** `http(s)://host:port/v1` → `ws(s)://host:port/stream` (the stream sits beside `/v1`). */
export function deriveStreamUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  let path = url.pathname.replace(/\/+$/, "");
  if (path.endsWith("/v1")) {
    path = path.slice(0, -3);
  }
  const scheme = url.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${url.host}${path}/stream`;
}

interface Urls {
  environment: string;
  baseUrl: string;
  streamUrl: string;
  /** Whether anything chose the server (else it is production by default). */
  chosen: boolean;
}

function resolveUrls(environment?: string, baseUrl?: string, streamUrl?: string): Urls {
  let chosen = environment !== undefined || baseUrl !== undefined;
  if (baseUrl === undefined && environment === undefined) {
    baseUrl = env("BALLAST_BASE_URL");
    environment = env("BALLAST_ENVIRONMENT");
    streamUrl = streamUrl ?? env("BALLAST_STREAM_URL");
    chosen = baseUrl !== undefined || environment !== undefined;
  }
  if (baseUrl === undefined) {
    const name = environment ?? "production";
    if (!isEnvironment(name)) {
      throw new TypeError(`environment must be one of production, sandbox, local, not ${JSON.stringify(name)}`);
    }
    const urls = ENVIRONMENTS[name];
    return { environment: name, baseUrl: urls.rest, streamUrl: streamUrl ?? urls.stream, chosen };
  }
  const base = baseUrl.replace(/\/+$/, "");
  let parsed: URL;
  try {
    parsed = new URL(base);
  } catch {
    throw new TypeError(
      `baseUrl must be an http(s) URL such as http://127.0.0.1:8000/v1, not ${JSON.stringify(baseUrl)}`,
    );
  }
  if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.host === "") {
    throw new TypeError(
      `baseUrl must be an http(s) URL such as http://127.0.0.1:8000/v1, not ${JSON.stringify(baseUrl)}`,
    );
  }
  const known = (Object.keys(ENVIRONMENTS) as Environment[]).find((name) => ENVIRONMENTS[name].rest === base);
  return {
    environment: environment ?? known ?? "custom",
    baseUrl: base,
    streamUrl: streamUrl ?? (known === undefined ? deriveStreamUrl(base) : ENVIRONMENTS[known].stream),
    chosen,
  };
}

/** Percent-encodes everything but `A-Za-z0-9-._~` (what URL parsing leaves as it is). */
export function encodeComponent(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function query(params: Params | undefined): string {
  if (params === undefined) {
    return "";
  }
  const parts = Object.entries(params).map(([key, value]) => `${encodeComponent(key)}=${encodeComponent(value)}`);
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

function params(values: Record<string, string | number | boolean | Date | null | undefined>): Params {
  const out: Params = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === null) {
      continue;
    }
    out[key] = value instanceof Date ? timeParam(value) : String(value);
  }
  return out;
}

function retryAfterSeconds(headers: FetchResponse["headers"]): number | null {
  const value = headers.get("retry-after");
  if (value === null) {
    return null;
  }
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

function rateLimitOf(headers: FetchResponse["headers"]): RateLimit | null {
  const limitText = headers.get("x-ratelimit-limit");
  if (limitText === null) {
    return null;
  }
  const limit = Number(limitText);
  const remaining = Number(headers.get("x-ratelimit-remaining"));
  const reset = Number(headers.get("x-ratelimit-reset"));
  if (!(Number.isInteger(limit) && Number.isInteger(remaining) && Number.isInteger(reset))) {
    return null;
  }
  return { limit, remaining, reset: new Date(reset * 1000) };
}

function items(data: JsonObject, key: string): Json[] {
  const list = data[key];
  if (!Array.isArray(list) || !list.every(isObject)) {
    throw new InvalidResponseError(`the reply has no list of objects under ${JSON.stringify(key)}`, {
      details: { field: key },
    });
  }
  return list;
}

function pageSize(value: number | undefined): number {
  const size = value ?? MAX_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new RangeError(`pageSize must be between 1 and ${MAX_PAGE_SIZE}`);
  }
  return size;
}

function networkError(what: string, error: unknown): NetworkError {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const name = cause instanceof Error ? cause.name : typeof cause;
  const text = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | null)?.code;
  return new NetworkError(`${what}: ${name}${text === "" ? "" : `: ${text}`}`, {
    details: { exception: typeof code === "string" ? code : name },
    cause: error,
  });
}

/**
 * A client for the Ballast REST API.
 *
 * `new BallastClient({ apiKey, apiSecret })` talks to production; pass `environment: "sandbox"`
 * or `"local"`, or `baseUrl: "http://127.0.0.1:8000/v1"` for your own server. In Node, missing
 * options come from `BALLAST_API_KEY`, `BALLAST_API_SECRET` and `BALLAST_BASE_URL` (or
 * `BALLAST_ENVIRONMENT`). Market data needs no key.
 */
export class BallastClient {
  readonly apiKey: string | null;
  readonly environment: string;
  readonly baseUrl: string;
  readonly streamUrl: string;
  timeoutMs: number;
  validateOrders: boolean;
  readonly retry: RetryPolicy;
  /** Added to the local clock when signing; set by {@link syncClock} (milliseconds). */
  clockOffsetMs = 0;
  /** The `X-RateLimit-*` headers of the last response, once one arrived. */
  rateLimit: RateLimit | null = null;

  readonly #signer: Signer | null;
  readonly #fetch: FetchLike;
  readonly #rules = new Map<string, MarketRules>();
  #lastTimestamp = 0;

  constructor(options: BallastClientOptions = {}) {
    const apiKey = options.apiKey ?? env("BALLAST_API_KEY");
    const apiSecret = options.apiSecret ?? env("BALLAST_API_SECRET");
    if ((apiKey === undefined) !== (apiSecret === undefined)) {
      throw new TypeError("give both apiKey and apiSecret, or neither (market data only)");
    }
    const maxRetries = options.maxRetries ?? 3;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new RangeError("maxRetries must be a whole number >= 0");
    }
    const urls = resolveUrls(options.environment, options.baseUrl, options.streamUrl);
    if (apiKey?.startsWith("bmkt_test_") && !urls.chosen) {
      throw new TypeError(
        "this is a sandbox key (bmkt_test_…) but no server was chosen, so the client would send it to " +
          'production: pass environment: "sandbox" (or "local"), or baseUrl: "http://HOST:PORT/v1" ' +
          "(or set BALLAST_ENVIRONMENT / BALLAST_BASE_URL)",
      );
    }
    this.apiKey = apiKey ?? null;
    this.#signer = apiSecret === undefined ? null : new Signer(apiSecret);
    this.environment = urls.environment;
    this.baseUrl = urls.baseUrl;
    this.streamUrl = urls.streamUrl;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.validateOrders = options.validateOrders ?? true;
    this.retry = new RetryPolicy({ maxRetries, maxRetryWaitMs: options.maxRetryWaitMs ?? 60_000 });
    const fetchImpl = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (fetchImpl === undefined) {
      throw new TypeError("no fetch here: pass options.fetch (Node 18+ and browsers have one)");
    }
    this.#fetch = fetchImpl;
  }

  get maxRetries(): number {
    return this.retry.maxRetries;
  }

  set maxRetries(value: number) {
    this.retry.maxRetries = value;
  }

  get maxRetryWaitMs(): number {
    return this.retry.maxRetryWaitMs;
  }

  set maxRetryWaitMs(value: number) {
    this.retry.maxRetryWaitMs = value;
  }

  toString(): string {
    const key = this.apiKey === null ? "null" : `${this.apiKey.slice(0, 14)}…`;
    return `BallastClient(baseUrl=${this.baseUrl}, apiKey=${key})`;
  }

  /** The local clock in Unix milliseconds, corrected by `clockOffsetMs`. */
  nowMs(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /**
   * The timestamp for the next signature: the corrected clock, but always past the last one
   * this client used, so no two requests ever carry the same timestamp (the server refuses a
   * signature it has seen before).
   */
  nextTimestamp(): number {
    const next = Math.max(this.nowMs(), this.#lastTimestamp + 1);
    this.#lastTimestamp = next;
    return next;
  }

  /** @internal Leave `count` timestamps unused (after a replay collision). */
  skipTimestamps(count: number): void {
    this.#lastTimestamp = Math.max(this.#lastTimestamp, this.nowMs()) + count;
  }

  /** The wait between retries (a subclass may observe or shorten it). */
  protected sleep(ms: number): Promise<void> {
    return sleep(ms);
  }

  /** The cached rules of a market (fetched on its first order, or by `getMarket`). */
  marketRules(marketId: string): MarketRules | null {
    return this.#rules.get(marketId) ?? null;
  }

  // ---------------------------------------------------------------------------- requests

  async #signedHeaders(method: string, signedPath: string, content: string): Promise<Record<string, string>> {
    const signer = this.#signer as Signer;
    const timestamp = String(this.nextTimestamp());
    return {
      Authorization: `Bearer ${this.apiKey}`,
      [TIMESTAMP_HEADER]: timestamp,
      [SIGNATURE_HEADER]: await signer.sign(timestamp, method, signedPath, content),
    };
  }

  async #send(
    method: string,
    url: string,
    headers: Record<string, string>,
    content: string | null,
  ): Promise<FetchResponse & { body: string }> {
    // A timer of its own that never keeps the process alive; no clearTimeout to pay for.
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const init: FetchInit = { method, headers, signal };
      if (content !== null) {
        init.body = content;
      }
      const response = await this.#fetch(url, init);
      const body = await response.text();
      return { status: response.status, headers: response.headers, text: () => Promise.resolve(body), body };
    } catch (error) {
      if (signal.aborted) {
        throw new NetworkError(`${method} ${url}: no response within ${this.timeoutMs} ms`, {
          details: { exception: "Timeout" },
          cause: error,
        });
      }
      throw networkError(`${method} ${url}`, error);
    }
  }

  /** One API call with its retries; the decoded JSON object of the 2xx reply. */
  async #request(method: string, path: string, spec: RequestSpec): Promise<JsonObject> {
    const content = spec.body === undefined ? null : encodeJson(spec.body); // serialised once, signed as is
    let sign = spec.auth !== "none" && this.#signer !== null;
    const url = new URL(this.baseUrl + path + query(spec.params));
    const href = url.href;
    const signedPath = url.pathname + url.search; // exactly as sent: with /v1 and the query
    let attempt = 0;
    let synced = false;
    let replayed = false;
    for (;;) {
      const headers: Record<string, string> = { Accept: "application/json" };
      if (content !== null) {
        headers["Content-Type"] = "application/json";
      }
      if (sign) {
        Object.assign(headers, await this.#signedHeaders(method, signedPath, content ?? ""));
      }
      let response: FetchResponse & { body: string };
      try {
        response = await this.#send(method, href, headers, content);
      } catch (error) {
        const failure = error as NetworkError;
        const delay = this.retry.delay(attempt, spec.idempotent, failure);
        if (delay === null) {
          throw failure;
        }
        attempt += 1;
        await this.sleep(delay);
        continue;
      }
      const limits = rateLimitOf(response.headers);
      // Signed requests count against the key; keep the IP bucket's unsigned clock syncs from
      // overwriting that (a client without a key has only the IP bucket).
      if (limits !== null && (sign || this.apiKey === null)) {
        this.rateLimit = limits;
      }
      let data: Json | undefined;
      try {
        data = response.body === "" ? undefined : decodeJson(response.body);
      } catch {
        data = undefined;
        if (response.status >= 200 && response.status < 300) {
          throw new InvalidResponseError(`${method} ${path}: the reply is not JSON`, { status: response.status });
        }
      }
      if (response.status >= 200 && response.status < 300) {
        if (!isObject(data)) {
          throw new InvalidResponseError(`${method} ${path}: the reply is not a JSON object`, {
            status: response.status,
          });
        }
        return data;
      }
      const retryAfter = retryAfterSeconds(response.headers);
      const error = errorFromBody(response.status, data ?? null, retryAfter);
      if (error instanceof ForbiddenError && sign && spec.auth === "optional") {
        // A key without the read scope may not sign market data, which needs no key at all:
        // ask again unsigned (counted against the IP's public limit).
        sign = false;
        continue;
      }
      if (error instanceof TimestampExpiredError && sign && !synced) {
        synced = true; // our clock is off: learn the server's once, then sign again
        await this.syncClock();
        continue;
      }
      if (error instanceof InvalidSignatureError && sign && !replayed && error.details.reason === "replayed") {
        // Another request (another process sharing the key?) used this signature first. The
        // server executed nothing: sign again with a fresh timestamp, once. The other signer
        // may be walking a run of timestamps (a burst of requests runs ahead of the clock, one
        // millisecond a request), so jump a random way past it rather than onto its next one;
        // the server's window is 30 s wide, a jump of at most a quarter second is nothing to it.
        replayed = true;
        this.skipTimestamps(1 + Math.floor(Math.random() * 256));
        continue;
      }
      const delay = this.retry.delay(attempt, spec.idempotent, error, retryAfter === null ? null : retryAfter * 1000);
      if (delay === null) {
        throw error;
      }
      attempt += 1;
      await this.sleep(delay);
    }
  }

  /** Every item over every page (newest first), or the first `limit` of them. */
  async *#pages<T>(
    path: string,
    key: string,
    parse: (item: Json) => T,
    base: Params,
    options: PageOptions,
    auth: Auth,
  ): AsyncGenerator<T, void, undefined> {
    const size = pageSize(options.pageSize);
    const limit = options.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new RangeError("limit must be a whole number >= 0");
    }
    let count = 0;
    let cursor: string | null = null;
    while (limit === undefined || count < limit) {
      const page: Params = { ...base, limit: String(limit === undefined ? size : Math.min(size, limit - count)) };
      if (cursor !== null) {
        page.cursor = cursor;
      }
      const data = await this.#request("GET", path, { params: page, auth, idempotent: true });
      for (const item of items(data, key)) {
        if (limit !== undefined && count >= limit) {
          return;
        }
        count += 1;
        yield parse(item);
      }
      const next = data.next_cursor;
      if (typeof next !== "string" || next === "") {
        return;
      }
      cursor = next;
    }
  }

  async #collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const item of iterable) {
      out.push(item);
    }
    return out;
  }

  // ---------------------------------------------------------------------------- market data

  /** `GET /time`: the server's clock. */
  async getServerTime(): Promise<ServerTime> {
    return parseServerTime(await this.#request("GET", "/time", { auth: "none", idempotent: true }));
  }

  /**
   * Set `clockOffsetMs` from `GET /time`; returns the offset in milliseconds. The client does
   * this by itself once when the server answers `TIMESTAMP_EXPIRED`.
   */
  async syncClock(): Promise<number> {
    const before = Date.now();
    const data = await this.#request("GET", "/time", { auth: "none", idempotent: true });
    const after = Date.now();
    const server = parseServerTime(data).timestampMs;
    this.clockOffsetMs = server - Math.floor((before + after) / 2);
    // Timestamps already used that lie beyond the server's window were refused, never seen:
    // starting below them again cannot replay anything.
    if (this.#lastTimestamp > this.nowMs() + TIMESTAMP_WINDOW_MS) {
      this.#lastTimestamp = 0;
    }
    return this.clockOffsetMs;
  }

  /** `GET /markets`: every market, optionally by status and type. */
  async getMarkets(filter: MarketsQuery = {}): Promise<Market[]> {
    const data = await this.#request("GET", "/markets", {
      params: params({
        status: filter.status,
        type: filter.type,
        category: filter.category,
        tag: filter.tag,
        series: filter.series,
        event: filter.event,
        q: filter.q,
        close_before: filter.closeBefore === undefined ? undefined : timeParam(filter.closeBefore),
        close_after: filter.closeAfter === undefined ? undefined : timeParam(filter.closeAfter),
      }),
      auth: "optional",
      idempotent: true,
    });
    const markets = items(data, "markets").map(parseMarket);
    for (const market of markets) {
      if (market.rules !== null) {
        this.#rules.set(market.id, market.rules);
      }
    }
    return markets;
  }

  /** `GET /series`: the series markets recur in, each with its markets' ids. */
  async getSeries(): Promise<MarketGroup[]> {
    const data = await this.#request("GET", "/series", { auth: "optional", idempotent: true });
    return items(data, "series").map(parseMarketGroup);
  }

  /** `GET /events`: the events markets belong to, each with its markets' ids. */
  async getEvents(): Promise<MarketGroup[]> {
    const data = await this.#request("GET", "/events", { auth: "optional", idempotent: true });
    return items(data, "events").map(parseMarketGroup);
  }

  /** `GET /markets/{id}`: one market with its `rules` and `settlement`. */
  async getMarket(marketId: string): Promise<Market> {
    const data = await this.#request("GET", `/markets/${encodeComponent(marketId)}`, {
      auth: "optional",
      idempotent: true,
    });
    const market = parseMarket(data);
    if (market.rules !== null) {
      this.#rules.set(market.id, market.rules);
    }
    return market;
  }

  /** `GET /markets/{id}/orderbook`: the aggregated book to `depth` levels a side (20). */
  async getOrderbook(marketId: string, options: { depth?: number } = {}): Promise<OrderBook> {
    const data = await this.#request("GET", `/markets/${encodeComponent(marketId)}/orderbook`, {
      params: params({ depth: options.depth ?? 20 }),
      auth: "optional",
      idempotent: true,
    });
    return parseOrderBook(data);
  }

  /** `GET /markets/{id}/trades`, newest first, page after page. */
  trades(marketId: string, options: PageOptions = {}): AsyncGenerator<Trade, void, undefined> {
    return this.#pages(`/markets/${encodeComponent(marketId)}/trades`, "trades", parseTrade, {}, options, "optional");
  }

  /** Every trade of `trades()`, gathered (or the latest `limit`). */
  getTrades(marketId: string, options: PageOptions = {}): Promise<Trade[]> {
    return this.#collect(this.trades(marketId, options));
  }

  /** `GET /markets/{id}/candles`: OHLCV candles (`interval` 1m, 5m, 1h (default), 1d). */
  async getCandles(marketId: string, options: CandlesQuery = {}): Promise<Candle[]> {
    const data = await this.#request("GET", `/markets/${encodeComponent(marketId)}/candles`, {
      params: params({
        interval: options.interval ?? "1h",
        start: options.start === undefined ? undefined : timeParam(options.start),
        end: options.end === undefined ? undefined : timeParam(options.end),
        limit: options.limit,
      }),
      auth: "optional",
      idempotent: true,
    });
    return items(data, "candles").map(parseCandle);
  }

  /** `GET /markets/{id}/settlement`: every proposal with its evidence; `verify()` checks the hashes. */
  async getSettlement(marketId: string): Promise<SettlementRecord> {
    const data = await this.#request("GET", `/markets/${encodeComponent(marketId)}/settlement`, {
      auth: "optional",
      idempotent: true,
    });
    return new SettlementRecord(data, decodeJson);
  }

  // ---------------------------------------------------------------------------- trading

  /** @internal The market's rules, from the cache or `GET /markets/{id}`. */
  async rulesFor(marketId: string): Promise<MarketRules | null> {
    const cached = this.#rules.get(marketId);
    if (cached !== undefined) {
      return cached;
    }
    return (await this.getMarket(marketId)).rules;
  }

  /** @internal The checks before sending: the error the server would give, if any. */
  async precheck(body: JsonObject): Promise<BallastError | null> {
    const rules = await this.rulesFor(String(body.market_id));
    return rules === null ? null : checkOrder(rules, body);
  }

  /**
   * `POST /orders`: place an order. It always carries a `clientOrderId` (generated unless
   * given), so a retry after a lost response returns the first order instead of placing another.
   *
   * ```ts
   * const order = await client.placeOrder({ marketId: "suez-apr2025", side: "buy", orderType: "limit", price: "0.87", size: 1000 });
   * ```
   */
  async placeOrder(params: PlaceOrderParams): Promise<Order> {
    const body = orderBody(params);
    if (this.validateOrders) {
      const error = await this.precheck(body);
      if (error !== null) {
        throw error;
      }
    }
    const data = await this.#request("POST", "/orders", { body, auth: "private", idempotent: true });
    return parseOrder(data);
  }

  /**
   * `POST /orders/batch`: up to 20 orders, each placed or refused alone. Orders the local checks
   * refuse are not sent; their results carry the error the server would have given.
   */
  async placeOrders(orders: readonly PlaceOrderParams[]): Promise<BatchResult[]> {
    const bodies = orders.map(orderBody);
    const results: (BatchResult | null)[] = bodies.map(() => null);
    if (this.validateOrders) {
      for (const [index, body] of bodies.entries()) {
        let error: BallastError | null;
        try {
          error = await this.precheck(body);
        } catch (caught) {
          if (!(caught instanceof MarketNotFoundError)) {
            throw caught;
          }
          error = caught;
        }
        if (error !== null) {
          results[index] = { status: error.status ?? 400, order: null, error, ok: false };
        }
      }
    }
    const toSend = results.flatMap((result, index) => (result === null ? [index] : []));
    if (toSend.length > 0) {
      const data = await this.#request("POST", "/orders/batch", {
        body: { orders: toSend.map((index) => bodies[index] as JsonObject) },
        auth: "private",
        idempotent: true, // every order carries a client_order_id
      });
      const answers = items(data, "results");
      if (answers.length !== toSend.length) {
        throw new InvalidResponseError(`sent ${toSend.length} orders, got ${answers.length} results`, {
          details: { field: "results" },
        });
      }
      toSend.forEach((index, i) => {
        results[index] = parseBatchResult(answers[i]);
      });
    }
    return results.filter((result): result is BatchResult => result !== null);
  }

  /**
   * `PATCH /orders/{id}`: a new price and/or total size. Not retried after a network failure (its
   * outcome is then unknown: read the order back with `getOrder`).
   */
  async amendOrder(orderId: string, params: AmendOrderParams): Promise<Order> {
    const data = await this.#request("PATCH", `/orders/${encodeComponent(orderId)}`, {
      body: amendBody(params),
      auth: "private",
      idempotent: false,
    });
    return parseOrder(data);
  }

  /** `DELETE /orders/{id}`: cancel one order; returns it, canceled. */
  async cancelOrder(orderId: string): Promise<Order> {
    const data = await this.#request("DELETE", `/orders/${encodeComponent(orderId)}`, {
      auth: "private",
      idempotent: true,
    });
    return parseOrder(data);
  }

  /** `DELETE /orders[?market_id=]`: cancel every open order, or those of one market. */
  async cancelAll(options: { marketId?: string } = {}): Promise<CanceledOrders> {
    const data = await this.#request("DELETE", "/orders", {
      params: params({ market_id: options.marketId }),
      auth: "private",
      idempotent: true,
    });
    return parseCanceledOrders(data);
  }

  /**
   * `DELETE /orders/batch`: cancel up to 20 orders by id, each canceled or refused on its own.
   * Results come in the same order, with `order` (canceled) or `error`.
   */
  async cancelOrders(orderIds: readonly string[]): Promise<BatchResult[]> {
    const data = await this.#request("DELETE", "/orders/batch", {
      body: { order_ids: [...orderIds] },
      auth: "private",
      idempotent: true, // a repeated cancel answers ORDER_NOT_CANCELABLE in its slot
    });
    return items(data, "results").map(parseBatchResult);
  }

  /**
   * `PATCH /orders/batch`: up to 20 amends (`{ orderId, price?, size? }`), each applied or
   * refused on its own. Not retried after a network failure, as `amendOrder`.
   */
  async amendOrders(amends: readonly BatchAmendParams[]): Promise<BatchResult[]> {
    const data = await this.#request("PATCH", "/orders/batch", {
      body: { orders: amends.map((amend) => ({ order_id: amend.orderId, ...amendBody(amend) })) },
      auth: "private",
      idempotent: false,
    });
    return items(data, "results").map(parseBatchResult);
  }

  /** `GET /orders/{id}/queue_position`: contracts and orders resting ahead of an open order. */
  async getQueuePosition(orderId: string): Promise<QueuePosition> {
    const data = await this.#request("GET", `/orders/${encodeComponent(orderId)}/queue_position`, {
      auth: "private",
      idempotent: true,
    });
    return parseQueuePosition(data);
  }

  /**
   * `POST /heartbeat`: arm or feed this key's dead-man switch. Unless another heartbeat comes
   * within `timeoutS` seconds (5 to 60), the server cancels every open order of the account.
   * `0` disarms it.
   */
  async heartbeat(timeoutS: number): Promise<DeadManSwitch> {
    const data = await this.#request("POST", "/heartbeat", {
      body: { timeout_s: timeoutS },
      auth: "private",
      idempotent: true, // a repeated heartbeat only moves the deadline on
    });
    return parseDeadManSwitch(data);
  }

  /** `DELETE /heartbeat`: disarm this key's dead-man switch. */
  async disarmHeartbeat(): Promise<DeadManSwitch> {
    const data = await this.#request("DELETE", "/heartbeat", { auth: "private", idempotent: true });
    return parseDeadManSwitch(data);
  }

  /**
   * `POST /order_groups`: a group whose orders may fill `maxFilledSize` contracts within a rolling
   * `windowS` (1 to 86,400 s; the server's default is 15). Reaching it cancels the group's open
   * orders and refuses new ones until `resetOrderGroup`. Not retried after a network failure:
   * a retry could create a second group.
   */
  async createOrderGroup(params: CreateOrderGroupParams): Promise<OrderGroup> {
    const data = await this.#request("POST", "/order_groups", {
      body: orderGroupBody(params),
      auth: "private",
      idempotent: false,
    });
    return parseOrderGroup(data);
  }

  /** `GET /order_groups`: the account's order groups, oldest first. */
  async getOrderGroups(): Promise<OrderGroup[]> {
    const data = await this.#request("GET", "/order_groups", { auth: "private", idempotent: true });
    return items(data, "order_groups").map(parseOrderGroup);
  }

  /** `GET /order_groups/{id}`. */
  async getOrderGroup(orderGroupId: string): Promise<OrderGroup> {
    const data = await this.#request("GET", `/order_groups/${encodeComponent(orderGroupId)}`, {
      auth: "private",
      idempotent: true,
    });
    return parseOrderGroup(data);
  }

  /** `POST /order_groups/{id}/reset`: the count starts afresh and a triggered group takes orders again. */
  async resetOrderGroup(orderGroupId: string): Promise<OrderGroup> {
    const data = await this.#request("POST", `/order_groups/${encodeComponent(orderGroupId)}/reset`, {
      auth: "private",
      idempotent: true, // a repeated reset only starts the count afresh again
    });
    return parseOrderGroup(data);
  }

  /** `DELETE /order_groups/{id}`: cancel the group's open orders and delete it. */
  async deleteOrderGroup(orderGroupId: string): Promise<DeletedOrderGroup> {
    const data = await this.#request("DELETE", `/order_groups/${encodeComponent(orderGroupId)}`, {
      auth: "private",
      idempotent: true,
    });
    return parseDeletedOrderGroup(data);
  }

  /** `GET /orders/{id}`. */
  async getOrder(orderId: string): Promise<Order> {
    const data = await this.#request("GET", `/orders/${encodeComponent(orderId)}`, {
      auth: "private",
      idempotent: true,
    });
    return parseOrder(data);
  }

  /**
   * `GET /orders`, page after page, newest first: `for await (const o of client.orders({ status: "open" }))`.
   * `status` is `open`, `filled`, `canceled`, `expired`, `rejected` or `all`.
   */
  orders(query: OrdersQuery = {}): AsyncGenerator<Order, void, undefined> {
    const base = params({
      status: query.status,
      market_id: query.marketId,
      start_date: query.startDate === undefined ? undefined : timeParam(query.startDate),
      end_date: query.endDate === undefined ? undefined : timeParam(query.endDate),
    });
    return this.#pages("/orders", "orders", parseOrder, base, query, "private");
  }

  /** Every order of `orders()`, gathered (or the latest `limit`). */
  getOrders(query: OrdersQuery = {}): Promise<Order[]> {
    return this.#collect(this.orders(query));
  }

  // ---------------------------------------------------------------------------- account

  /** `GET /account/balance`. */
  async getBalance(): Promise<Balance> {
    return parseBalance(await this.#request("GET", "/account/balance", { auth: "private", idempotent: true }));
  }

  /**
   * `GET /positions`: the open positions (the default), the positions settlements paid out
   * (`settled`, newest first, over every page), or both (`all`).
   */
  async getPositions(options: { status?: PositionStatus } = {}): Promise<Position[]> {
    const status = options.status;
    if (status === undefined || status === "open") {
      const spec: RequestSpec = { params: params({ status }), auth: "private", idempotent: true };
      return items(await this.#request("GET", "/positions", spec), "positions").map(parsePosition);
    }
    return this.#collect(this.#pages("/positions", "positions", parsePosition, params({ status }), {}, "private"));
  }

  /** `GET /settlements`, page after page, newest first: each position a settlement paid out. */
  settlements(query: SettlementsQuery = {}): AsyncGenerator<SettledPosition, void, undefined> {
    const base = params({
      market_id: query.marketId,
      start_date: query.startDate === undefined ? undefined : timeParam(query.startDate),
      end_date: query.endDate === undefined ? undefined : timeParam(query.endDate),
    });
    return this.#pages("/settlements", "settlements", parseSettledPosition, base, query, "private");
  }

  /** Every settled position of `settlements()`, gathered (or the latest `limit`). */
  getSettlements(query: SettlementsQuery = {}): Promise<SettledPosition[]> {
    return this.#collect(this.settlements(query));
  }

  /** `GET /account/fees`: fees paid and rebates earned per UTC day or month, newest first. */
  getFees(query: FeesQuery = {}): Promise<FeePeriod[]> {
    const base = params({
      period: query.period,
      start_date: query.startDate === undefined ? undefined : timeParam(query.startDate),
      end_date: query.endDate === undefined ? undefined : timeParam(query.endDate),
    });
    return this.#collect(this.#pages("/account/fees", "periods", parseFeePeriod, base, query, "private"));
  }

  /** `GET /fills`, page after page, newest first. */
  fills(query: FillsQuery = {}): AsyncGenerator<Fill, void, undefined> {
    const base = params({
      market_id: query.marketId,
      start_date: query.startDate === undefined ? undefined : timeParam(query.startDate),
      end_date: query.endDate === undefined ? undefined : timeParam(query.endDate),
    });
    return this.#pages("/fills", "fills", parseFill, base, query, "private");
  }

  /** Every fill of `fills()`, gathered (or the latest `limit`). */
  getFills(query: FillsQuery = {}): Promise<Fill[]> {
    return this.#collect(this.fills(query));
  }

  /** `GET /account/ledger`, page after page, newest first. */
  ledger(query: LedgerQuery = {}): AsyncGenerator<LedgerEntry, void, undefined> {
    const base = params({
      kind: query.kind,
      start_date: query.startDate === undefined ? undefined : timeParam(query.startDate),
      end_date: query.endDate === undefined ? undefined : timeParam(query.endDate),
    });
    return this.#pages("/account/ledger", "entries", parseLedgerEntry, base, query, "private");
  }

  /** Every entry of `ledger()`, gathered (or the latest `limit`). */
  getLedger(query: LedgerQuery = {}): Promise<LedgerEntry[]> {
    return this.#collect(this.ledger(query));
  }

  /**
   * `POST /account/faucet` (sandbox only): test USDC, the server's default amount or `amount`.
   * A deposit: never repeated after a lost reply (check `getBalance`); `FaucetLimitError` past the
   * daily cap is never waited out.
   */
  async requestFaucet(options: { amount?: Numeric } = {}): Promise<FaucetGrant> {
    const spec: RequestSpec = { auth: "private", idempotent: false };
    if (options.amount !== undefined) {
      spec.body = { amount: priceText(options.amount, "amount") };
    }
    return parseFaucetGrant(await this.#request("POST", "/account/faucet", spec));
  }

  // ---------------------------------------------------------------------------- streaming

  /**
   * The WebSocket stream at `streamUrl`, connected (and authenticated, with a key):
   *
   * ```ts
   * const stream = await client.stream();
   * const book = await stream.orderBook("suez-apr2025");
   * for await (const message of stream) { … }
   * ```
   */
  async stream(options: StreamOptions = {}): Promise<Stream> {
    const stream = Stream.create(this.#host(), options);
    await stream.connect();
    return stream;
  }

  #host(): StreamHost {
    return {
      url: this.streamUrl,
      apiKey: this.apiKey,
      timeoutMs: this.timeoutMs,
      validateOrders: this.validateOrders,
      retry: this.retry,
      signStream: async (nonce: string) => {
        const signer = this.#signer as Signer;
        const timestamp = String(this.nextTimestamp());
        return { timestamp, signature: await signer.sign(timestamp, "GET", "/stream", nonce) };
      },
      syncClock: () => this.syncClock(),
      precheck: (body: JsonObject) => this.precheck(body),
    };
  }
}
