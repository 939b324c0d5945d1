/**
 * The WebSocket stream (docs/websocket.md): market data, private updates and order entry over
 * one connection, kept alive by itself.
 *
 * - **Authenticates** on connect when the client has a key: the server's first message is a
 *   `welcome` with a one-time `nonce`; the `auth` signature is HMAC(secret, timestamp + "GET" +
 *   "/stream" + nonce). Again after every reconnect.
 * - **Reconnects** with exponential backoff and jitter when the connection drops, the server
 *   shuts down or restarts, cuts a slow consumer (`4008`) or goes silent for three heartbeat
 *   intervals; then resubscribes everything, each subscription's fresh snapshot followed by a
 *   `resynced` event. `4001` (key revoked) and `4029` (too many connections) end the stream.
 * - **Detects gaps**: each subscription's `seq` must rise by exactly one (heartbeats name the last
 *   `seq` sent); on a jump it unsubscribes and subscribes again for a fresh snapshot.
 * - **Keeps a LocalOrderBook** per `orderbook` subscription, applied as messages are read.
 * - **Tells you**: `connected`, `disconnected` and `resynced` come through the same iteration as
 *   the data (and to `stream.on(...)` listeners), so silence never hides a dead feed.
 */

import {
  BallastError,
  errorFromBody,
  ForbiddenError,
  InvalidRequestError,
  InvalidResponseError,
  NetworkError,
  RateLimitError,
  TimestampExpiredError,
  TooManyConnectionsError,
  UnauthorizedError,
} from "./errors.js";
import { decodeJson, encodeJson, isObject, type JsonObject } from "./json.js";
import {
  type Channel,
  type ChannelMessage,
  type Connected,
  type Pong,
  PRIVATE_CHANNELS,
  PUBLIC_CHANNELS,
  parseChannelMessage,
  parseHeartbeat,
  parsePong,
  type ResyncReason,
  type StreamMessage,
} from "./messages.js";
import {
  type CanceledOrders,
  type DeadManSwitch,
  type DeletedOrderGroup,
  type Order,
  type OrderGroup,
  parseCanceledOrders,
  parseDeadManSwitch,
  parseDeletedOrderGroup,
  parseOrder,
  parseOrderGroup,
} from "./models.js";
import { LocalOrderBook } from "./orderbook.js";
import {
  type AmendOrderParams,
  amendBody,
  type CreateOrderGroupParams,
  orderBody,
  orderGroupBody,
  type PlaceOrderParams,
} from "./orders.js";
import { type RetryPolicy, sleep } from "./retry.js";
import { abortSocket, frameText, type SocketLike, socketConstructor } from "./websocket.js";

export const CLOSE_REVOKED = 4001;
export const CLOSE_SLOW_CONSUMER = 4008;
export const CLOSE_TOO_MANY_CONNECTIONS = 4029;

/** Replies matched to requests by `id` (data messages and heartbeats carry none). */
const REPLIES = new Set([
  "authenticated",
  "subscribed",
  "unsubscribed",
  "pong",
  "result",
  "error",
  "cancel_on_disconnect",
]);

export interface StreamOptions {
  /** The server cancels the orders this stream placed when its connection drops (needs a key). */
  cancelOnDisconnect?: boolean;
  /** Also yield the server's `heartbeat` messages. */
  heartbeats?: boolean;
  /** The server's heartbeat period (5,000 ms); silence for three periods means a dead feed. */
  heartbeatIntervalMs?: number;
  /** Reconnect by itself (true). */
  reconnect?: boolean;
  /** `null` (default): forever. */
  maxReconnectAttempts?: number | null;
  /** First reconnect delay, doubling per attempt with jitter (250 ms). */
  backoffBaseMs?: number;
  /** Longest reconnect delay (30,000 ms). */
  backoffMaxMs?: number;
  /**
   * Messages buffered for iteration (10,000). Past it the oldest channel messages are dropped and
   * their subscriptions resynced (`resynced` with reason `overflow`); `0` buffers only connection
   * events (for programs that read books and send orders but never iterate); `null` never drops.
   */
  maxQueue?: number | null;
  /** How long to wait for a reply (the client's `timeoutMs`). */
  requestTimeoutMs?: number;
  /** Check prices and sizes before sending (the client's setting). */
  validateOrders?: boolean;
}

/** @internal What the stream needs from its client. */
export interface StreamHost {
  readonly url: string;
  readonly apiKey: string | null;
  readonly timeoutMs: number;
  readonly validateOrders: boolean;
  readonly retry: RetryPolicy;
  signStream(nonce: string): Promise<{ timestamp: string; signature: string }>;
  syncClock(): Promise<number>;
  precheck(body: JsonObject): Promise<BallastError | null>;
}

/** One of the stream's subscriptions: `seq` is the last read, `synced` false while it waits for a (fresh) snapshot. */
export interface Subscription {
  readonly channel: Channel;
  readonly marketId: string | null;
  readonly depth: number | null;
  readonly seq: number | null;
  readonly synced: boolean;
}

type Listener<T> = (message: T) => void;
type MessageOfType<K extends StreamMessage["type"]> = Extract<StreamMessage, { type: K }>;

class Deferred<T> {
  readonly promise: Promise<T>;
  settled = false;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.promise.catch(() => undefined); // nobody may be waiting
  }

  resolve(value: T): void {
    if (!this.settled) {
      this.settled = true;
      this.#resolve(value);
    }
  }

  reject(error: unknown): void {
    if (!this.settled) {
      this.settled = true;
      this.#reject(error);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function replyError(reply: JsonObject): BallastError {
  const error = reply.error;
  const status = reply.status;
  const details = isObject(error) ? error.details : undefined;
  const retryAfter = isObject(details) ? details.retry_after : undefined;
  const seconds =
    typeof retryAfter === "number" ? retryAfter : typeof retryAfter === "string" ? Number(retryAfter) : null;
  return errorFromBody(typeof status === "number" ? status : null, { error: error ?? null }, seconds);
}

/** The error ending the stream for close codes that must not be retried. */
function closeError(code: number | null, reason: string): BallastError | null {
  if (code === CLOSE_REVOKED) {
    return new UnauthorizedError(`the stream was closed: ${reason || "API key revoked"}`, {
      status: 401,
      details: { close_code: code },
    });
  }
  if (code === CLOSE_TOO_MANY_CONNECTIONS) {
    return new TooManyConnectionsError(`the stream was closed: ${reason || "too many connections"}`, {
      details: { close_code: code },
    });
  }
  return null;
}

interface CloseInfo {
  readonly code: number | null;
  readonly reason: string;
}

/** One WebSocket connection: its pending requests, the server's welcome and how it ended. */
class Conn {
  readonly socket: SocketLike;
  readonly pending = new Map<number, { deferred: Deferred<JsonObject>; op: string }>();
  readonly opened = new Deferred<void>();
  readonly welcome = new Deferred<string>();
  readonly closed = new Deferred<CloseInfo>();
  onMessage: ((message: JsonObject) => void) | null = null;
  lastHeard = Date.now();
  #refusal: JsonObject | null = null;
  #silent: string | null = null;

  constructor(socket: SocketLike) {
    this.socket = socket;
    socket.addEventListener("open", () => this.opened.resolve());
    socket.addEventListener("message", (event) => this.#frame(event.data));
    socket.addEventListener("close", (event) => this.#ended(event.code, event.reason));
    socket.addEventListener("error", () => undefined); // a close event follows
  }

  #frame(data: unknown): void {
    this.lastHeard = Date.now();
    const text = frameText(data);
    if (text === null) {
      return;
    }
    let message: unknown;
    try {
      message = decodeJson(text);
    } catch {
      return;
    }
    if (!isObject(message)) {
      return;
    }
    const type = message.type;
    if (type === "welcome") {
      const nonce = message.nonce;
      if (typeof nonce === "string") {
        this.welcome.resolve(nonce);
      }
      return;
    }
    if (typeof type === "string" && REPLIES.has(type)) {
      if (type === "pong") {
        this.onMessage?.(message); // the books catch up before ping() returns
      }
      const id = message.id;
      const entry = typeof id === "number" ? this.pending.get(id) : undefined;
      if (entry !== undefined) {
        this.pending.delete(id as number);
        entry.deferred.resolve(message);
      } else if (type === "error" && (id === null || id === undefined)) {
        this.#refusal = message; // e.g. too many connections from this address
      }
      return;
    }
    this.onMessage?.(message);
  }

  #ended(code: number, reason: string): void {
    if (this.closed.settled) {
      return;
    }
    let info: CloseInfo;
    if (this.#silent !== null) {
      info = { code: null, reason: this.#silent };
    } else if (code === 1006) {
      info = { code: null, reason: reason || "the connection dropped without a close frame" };
    } else {
      info = { code, reason: reason ?? "" };
    }
    const error =
      this.#refusal !== null
        ? replyError(this.#refusal)
        : (closeError(info.code, info.reason) ??
          new NetworkError(
            `the connection was lost (${info.code}: ${info.reason}) before the reply; the request's outcome is unknown`,
            { details: { close_code: info.code } },
          ));
    this.opened.reject(
      this.#refusal !== null
        ? error
        : new NetworkError(`the connection closed before it opened (${info.code}: ${info.reason})`, {
            details: { close_code: info.code },
          }),
    );
    this.welcome.reject(error);
    this.failPending(error);
    this.closed.resolve(info);
  }

  failPending(error: BallastError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const { deferred } of pending) {
      deferred.reject(error);
    }
  }

  send(message: JsonObject): void {
    try {
      this.socket.send(encodeJson(message));
    } catch (error) {
      throw new NetworkError(`cannot send ${String(message.op)}: the connection is closed`, { cause: error });
    }
  }

  /** Drop the connection now (a dead feed, a failed handshake). */
  abort(reason: string): void {
    this.#silent = this.#silent ?? reason;
    abortSocket(this.socket);
    this.#ended(1006, reason);
  }

  /** Close politely, then for sure. */
  async close(): Promise<void> {
    if (this.closed.settled) {
      return;
    }
    try {
      this.socket.close(1000, "client closing");
    } catch {
      // not open yet
    }
    await Promise.race([this.closed.promise, sleep(2000)]);
    this.abort("the stream is closed");
  }
}

type SubState = "subscribing" | "live" | "resyncing" | "unsubscribing";

function subKey(channel: string, marketId: string | null): string {
  return `${channel}\u0000${marketId ?? ""}`;
}

class Sub {
  readonly channel: Channel;
  readonly marketId: string | null;
  readonly depth: number | null;
  seq: number | null = null;
  state: SubState = "subscribing";
  reason: ResyncReason | null = null;
  /** Messages were dropped unread: deliver none until the resync's fresh snapshot. */
  skipping = false;
  ready = new Deferred<ChannelMessage>();
  lastSnapshot: ChannelMessage | null = null;
  readonly book: LocalOrderBook | null;

  constructor(channel: Channel, marketId: string | null, depth: number | null) {
    this.channel = channel;
    this.marketId = marketId;
    this.depth = depth;
    this.book = channel === "orderbook" ? new LocalOrderBook(marketId ?? "", depth ?? 20) : null;
  }

  get key(): string {
    return subKey(this.channel, this.marketId);
  }

  /** The stream's fields, for subscribe and unsubscribe alike. */
  fields(): JsonObject {
    const fields: JsonObject = { channel: this.channel };
    if (this.marketId !== null) {
      fields.market_id = this.marketId;
    }
    if (this.depth !== null) {
      fields.depth = this.depth;
    }
    return fields;
  }

  unsynced(): void {
    if (this.book !== null) {
      this.book.synced = false;
    }
  }

  fail(error: BallastError): void {
    this.ready.reject(error);
  }
}

function isChannelMessage(item: StreamMessage): item is ChannelMessage {
  return item.type === "snapshot" || item.type === "update";
}

/**
 * One connection to the stream, re-established as needed. Get it with `await client.stream()`;
 * `for await (const message of stream)` reads it; `await stream.close()` ends it.
 */
export class Stream implements AsyncIterable<StreamMessage> {
  readonly url: string;
  cancelOnDisconnect: boolean;
  readonly heartbeats: boolean;
  readonly heartbeatIntervalMs: number;
  readonly reconnect: boolean;
  readonly maxReconnectAttempts: number | null;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly maxQueue: number | null;
  readonly requestTimeoutMs: number;
  readonly validateOrders: boolean;
  /** The authenticated account (`null` without a key). */
  accountId: string | null = null;
  /** How many times the connection was re-established. */
  reconnects = 0;

  readonly #host: StreamHost;
  #conn: Conn | null = null;
  #generation = 0;
  readonly #subs = new Map<string, Sub>();
  #nextId = 0;
  #inbox: StreamMessage[] = [];
  #head = 0;
  #queued = 0; // channel messages and heartbeats in the inbox
  #stale = new Set<string>(); // subscriptions to resync on the next read
  readonly #waiters = new Set<() => void>();
  #started = false;
  #closed = false;
  #fatal: BallastError | null = null;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  readonly #listeners = new Map<string, Set<Listener<never>>>();

  /** @internal Use `client.stream()`. */
  static create(host: StreamHost, options: StreamOptions = {}): Stream {
    return new Stream(host, options);
  }

  private constructor(host: StreamHost, options: StreamOptions) {
    const cancelOnDisconnect = options.cancelOnDisconnect ?? false;
    if (cancelOnDisconnect && host.apiKey === null) {
      throw new TypeError("cancelOnDisconnect needs an API key");
    }
    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5000;
    if (!(heartbeatIntervalMs > 0)) {
      throw new RangeError("heartbeatIntervalMs must be positive");
    }
    const maxQueue = options.maxQueue === undefined ? 10_000 : options.maxQueue;
    if (maxQueue !== null && !(maxQueue >= 0)) {
      throw new RangeError("maxQueue must be >= 0 or null");
    }
    this.#host = host;
    this.url = host.url;
    this.cancelOnDisconnect = cancelOnDisconnect;
    this.heartbeats = options.heartbeats ?? false;
    this.heartbeatIntervalMs = heartbeatIntervalMs;
    this.reconnect = options.reconnect ?? true;
    this.maxReconnectAttempts = options.maxReconnectAttempts ?? null;
    this.backoffBaseMs = options.backoffBaseMs ?? 250;
    this.backoffMaxMs = options.backoffMaxMs ?? 30_000;
    this.maxQueue = maxQueue;
    this.requestTimeoutMs = options.requestTimeoutMs ?? host.timeoutMs;
    this.validateOrders = options.validateOrders ?? host.validateOrders;
  }

  /** True while a connection is up (and authenticated, with a key). */
  get connected(): boolean {
    return this.#conn !== null;
  }

  /** True once `close()` was called or the stream ended with an error. */
  get closed(): boolean {
    return this.#closed || this.#fatal !== null;
  }

  // ---------------------------------------------------------------------------- lifecycle

  /** Connect (and authenticate). `client.stream()` calls it; throws `NetworkError` or `auth`'s error. */
  async connect(): Promise<this> {
    if (this.#started || this.#closed) {
      throw new Error("a stream connects once; make a new one with client.stream()");
    }
    this.#started = true;
    const conn = await this.#open();
    this.#attach(conn);
    this.#deliver(this.#connectedEvent(false));
    void this.#supervise();
    return this;
  }

  /** Close the connection; iteration ends and pending requests fail. */
  async close(): Promise<void> {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    this.#wake();
    this.#stopWatchdog();
    const conn = this.#conn;
    this.#conn = null;
    const closed = new NetworkError("the stream is closed");
    if (conn !== null) {
      conn.failPending(closed);
      await conn.close();
    }
    for (const sub of this.#subs.values()) {
      sub.fail(closed);
    }
  }

  #checkOpen(): void {
    if (this.#fatal !== null) {
      throw this.#fatal;
    }
    if (this.#closed) {
      throw new NetworkError("the stream is closed");
    }
    if (!this.#started) {
      throw new Error("connect first: use `await client.stream()`");
    }
  }

  /**
   * Listen for one kind of message or event as it arrives (`connected`, `disconnected`,
   * `resynced`, `subscription_failed`, `heartbeat`, `snapshot`, `update`), whether or not anyone
   * iterates. Returns a function that removes the listener.
   */
  on<K extends StreamMessage["type"]>(type: K, listener: Listener<MessageOfType<K>>): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener as Listener<never>);
    return () => {
      set.delete(listener as Listener<never>);
    };
  }

  // ---------------------------------------------------------------------------- connecting

  #connectedEvent(reconnect: boolean): Connected {
    return { type: "connected", url: this.url, accountId: this.accountId, reconnect, time: new Date() };
  }

  async #socket(): Promise<Conn> {
    let conn: Conn;
    try {
      const Socket = await socketConstructor();
      conn = new Conn(new Socket(this.url));
    } catch (error) {
      throw new NetworkError(`cannot connect to ${this.url}: ${String(error)}`, { cause: error });
    }
    try {
      await withTimeout(
        conn.opened.promise,
        this.requestTimeoutMs,
        () => new NetworkError(`cannot connect to ${this.url}: no answer within ${this.requestTimeoutMs} ms`),
      );
    } catch (error) {
      conn.abort("could not connect");
      if (error instanceof BallastError && !(error instanceof NetworkError)) {
        throw error;
      }
      throw new NetworkError(`cannot connect to ${this.url}: ${(error as Error).message}`, { cause: error });
    }
    return conn;
  }

  /** A new connection, authenticated when the client has a key. */
  async #open(): Promise<Conn> {
    let synced = false;
    for (;;) {
      const conn = await this.#socket();
      try {
        if (this.#host.apiKey !== null) {
          await this.#authenticate(conn);
        } else {
          // Confirms the connection was admitted (an IP over its limit is refused first).
          await this.#handshake(conn, { op: "ping" });
        }
        return conn;
      } catch (error) {
        conn.abort("handshake failed");
        if (error instanceof TimestampExpiredError && !synced) {
          synced = true; // our clock is off: learn the server's once, then sign again (a fresh nonce too)
          await this.#host.syncClock();
          continue;
        }
        throw error;
      }
    }
  }

  async #authenticate(conn: Conn): Promise<void> {
    const nonce = await withTimeout(
      conn.welcome.promise,
      this.requestTimeoutMs,
      () => new NetworkError(`no welcome from ${this.url} within ${this.requestTimeoutMs} ms`),
    );
    const { timestamp, signature } = await this.#host.signStream(nonce);
    const reply = await this.#handshake(conn, {
      op: "auth",
      api_key: this.#host.apiKey as string,
      timestamp,
      signature,
      cancel_on_disconnect: this.cancelOnDisconnect,
    });
    const account = reply.account_id;
    this.accountId = typeof account === "string" ? account : null;
  }

  /** A request before the connection is attached (auth, or the first ping). */
  async #handshake(conn: Conn, request: JsonObject): Promise<JsonObject> {
    const id = this.#newId();
    const deferred = new Deferred<JsonObject>();
    conn.pending.set(id, { deferred, op: String(request.op) });
    conn.send({ ...request, id });
    try {
      const reply = await withTimeout(
        deferred.promise,
        this.requestTimeoutMs,
        () => new NetworkError(`no reply to ${String(request.op)} within ${this.requestTimeoutMs} ms`),
      );
      if (reply.type === "error") {
        throw replyError(reply);
      }
      return reply;
    } finally {
      conn.pending.delete(id);
    }
  }

  #attach(conn: Conn): void {
    this.#conn = conn;
    this.#generation += 1;
    conn.lastHeard = Date.now();
    conn.onMessage = (message) => this.#dispatch(conn, message);
    this.#stopWatchdog();
    const deadAfter = 3 * this.heartbeatIntervalMs;
    this.#watchdog = setInterval(
      () => {
        if (Date.now() - conn.lastHeard > deadAfter) {
          conn.abort(`no message for ${deadAfter / 1000} s (dead feed)`);
        }
      },
      Math.min(1000, this.heartbeatIntervalMs / 2),
    );
  }

  #stopWatchdog(): void {
    if (this.#watchdog !== null) {
      clearInterval(this.#watchdog);
      this.#watchdog = null;
    }
  }

  /** Wait for the connection to drop; reconnect and resubscribe, or end the stream. */
  async #supervise(): Promise<void> {
    try {
      while (!this.#closed) {
        const conn = this.#conn;
        if (conn === null) {
          return;
        }
        const { code, reason } = await conn.closed.promise;
        if (this.#conn === conn) {
          this.#conn = null;
          this.#stopWatchdog();
        }
        if (this.#closed) {
          return;
        }
        let fatal = closeError(code, reason);
        if (fatal === null && !this.reconnect) {
          fatal = new NetworkError(`the stream closed (${code}: ${reason})`, { details: { close_code: code } });
        }
        if (fatal !== null) {
          this.#finish(code, reason, fatal);
          return;
        }
        this.#deliver({ type: "disconnected", code, reason, reconnecting: true, error: null, time: new Date() });
        for (const sub of this.#subs.values()) {
          if (sub.state === "live" || sub.state === "resyncing") {
            sub.state = "resyncing";
            sub.reason = "reconnect";
            sub.unsynced();
          }
        }
        const next = await this.#reconnectLoop();
        if (next === null) {
          return;
        }
        this.reconnects += 1;
        this.#attach(next);
        this.#deliver(this.#connectedEvent(true));
        this.#resubscribeAll();
      }
    } catch (error) {
      // A bug here must not leave a silent stream behind.
      const failure = new BallastError(`the stream failed: ${String(error)}`, { code: "STREAM_FAILED", cause: error });
      this.#finish(null, failure.message, failure);
    }
  }

  async #reconnectLoop(): Promise<Conn | null> {
    let attempt = 0;
    while (!this.#closed) {
      const delay = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** attempt);
      await sleep(delay * (0.5 + 0.5 * Math.random()));
      if (this.#closed) {
        return null;
      }
      try {
        const conn = await this.#open();
        if (this.#closed) {
          void conn.close();
          return null;
        }
        return conn;
      } catch (error) {
        if (
          error instanceof UnauthorizedError ||
          error instanceof ForbiddenError ||
          error instanceof TooManyConnectionsError
        ) {
          this.#finish(null, error.message, error);
          return null;
        }
        if (!(error instanceof BallastError)) {
          throw error;
        }
        attempt += 1;
        if (this.maxReconnectAttempts !== null && attempt >= this.maxReconnectAttempts) {
          this.#finish(null, error.message, error);
          return null;
        }
      }
    }
    return null;
  }

  /** End the stream for good: deliver the event, then iteration throws `error`. */
  #finish(code: number | null, reason: string, error: BallastError): void {
    this.#stopWatchdog();
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) {
      conn.failPending(error);
      conn.abort(reason);
    }
    this.#deliver({ type: "disconnected", code, reason, reconnecting: false, error, time: new Date() });
    this.#fatal = error;
    for (const sub of this.#subs.values()) {
      sub.fail(error);
      sub.unsynced();
    }
    this.#wake();
  }

  // ---------------------------------------------------------------------------- reading

  #dispatch(conn: Conn, message: JsonObject): void {
    if (conn !== this.#conn) {
      return;
    }
    try {
      const type = message.type;
      if (type === "snapshot" || type === "update") {
        this.#onData(type, message);
      } else if (type === "heartbeat") {
        this.#onHeartbeat(message);
      } else if (type === "pong") {
        this.#caughtUp(message.exchange_seq);
      }
    } catch {
      // One bad message must not stop the feed.
    }
  }

  #onData(type: "snapshot" | "update", message: JsonObject): void {
    const channel = message.channel;
    const marketId = message.market_id;
    const sub = this.#subs.get(subKey(String(channel), typeof marketId === "string" ? marketId : null));
    if (sub === undefined || sub.state === "unsubscribing") {
      return; // unsubscribed meanwhile
    }
    if (type === "snapshot") {
      let snapshot: ChannelMessage;
      try {
        snapshot = parseChannelMessage(message);
      } catch (error) {
        this.#drop(sub, error instanceof BallastError ? error : new InvalidResponseError(String(error)));
        this.#spawn(this.#unsubscribeQuietly(sub));
        return;
      }
      if (sub.book !== null && snapshot.channel === "orderbook") {
        sub.book.reset(snapshot.bids, snapshot.asks, {
          seq: snapshot.seq,
          exchangeSeq: snapshot.exchangeSeq,
          time: snapshot.time,
        });
      }
      const was = sub.state;
      const reason = sub.reason;
      sub.seq = snapshot.seq;
      sub.state = "live";
      sub.reason = null;
      sub.skipping = false;
      sub.lastSnapshot = snapshot;
      this.#deliver(snapshot);
      if (was === "resyncing") {
        this.#deliver({
          type: "resynced",
          channel: sub.channel,
          marketId: sub.marketId,
          reason: reason ?? "gap",
          seq: snapshot.seq,
          exchangeSeq: snapshot.exchangeSeq,
          time: new Date(),
        });
      }
      sub.ready.resolve(snapshot);
      return;
    }
    if (sub.state !== "live") {
      return; // waiting for a fresh snapshot
    }
    const seq = message.seq;
    if (sub.seq === null || seq !== sub.seq + 1) {
      this.#resync(sub, "gap");
      return;
    }
    let update: ChannelMessage;
    try {
      update = parseChannelMessage(message);
    } catch {
      this.#resync(sub, "gap");
      return;
    }
    sub.seq = update.seq;
    if (sub.book !== null && update.channel === "orderbook") {
      sub.book.update(update.bids, update.asks, {
        seq: update.seq,
        exchangeSeq: update.exchangeSeq,
        time: update.time,
      });
    }
    if (!sub.skipping) {
      this.#deliver(update);
    }
  }

  #onHeartbeat(message: JsonObject): void {
    const beat = parseHeartbeat(message);
    for (const entry of beat.subscriptions) {
      const sub = this.#subs.get(subKey(entry.channel, entry.marketId));
      if (sub !== undefined && sub.state === "live" && sub.seq !== null && entry.seq > sub.seq) {
        this.#resync(sub, "gap"); // messages were lost at the end of the subscription
      }
    }
    this.#caughtUp(beat.exchangeSeq);
    if (this.heartbeats) {
      this.#deliver(beat);
    } else {
      this.#emit(beat);
    }
  }

  /** Everything up to `exchangeSeq` has been read (a heartbeat or pong says so). */
  #caughtUp(exchangeSeq: unknown): void {
    if (typeof exchangeSeq !== "number") {
      return;
    }
    for (const sub of this.#subs.values()) {
      if (sub.book !== null && sub.state === "live") {
        sub.book.caughtUp(exchangeSeq);
      }
    }
  }

  // ---------------------------------------------------------------------------- delivering

  #emit(item: StreamMessage): void {
    const listeners = this.#listeners.get(item.type);
    if (listeners === undefined) {
      return;
    }
    for (const listener of [...listeners]) {
      try {
        (listener as Listener<StreamMessage>)(item);
      } catch (error) {
        queueMicrotask(() => {
          throw error; // a listener's bug surfaces, and the feed goes on
        });
      }
    }
  }

  #deliver(item: StreamMessage): void {
    this.#emit(item);
    const limit = this.maxQueue;
    if (isChannelMessage(item) || item.type === "heartbeat") {
      if (limit === 0) {
        return;
      }
      this.#queued += 1;
    }
    this.#inbox.push(item);
    this.#wake();
    if (limit !== null && this.#queued > limit) {
      this.#overflow();
    }
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) {
      waiter();
    }
  }

  /** Until something is delivered (or the deadline, a `Date.now()` value, passes). */
  #wait(deadline: number | null): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      if (deadline !== null) {
        timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      }
      this.#waiters.add(done);
    });
  }

  /**
   * Nobody read fast enough: drop the channel messages waiting, and deliver none of their
   * subscriptions' until a fresh snapshot, which the next read asks for (books stay current
   * meanwhile). Connection events are kept, the latest hundred of them.
   */
  #overflow(): void {
    const dropped = new Set<string>();
    const kept: StreamMessage[] = [];
    for (let i = this.#head; i < this.#inbox.length; i += 1) {
      const item = this.#inbox[i] as StreamMessage;
      if (isChannelMessage(item)) {
        dropped.add(subKey(item.channel, item.marketId));
      } else if (item.type !== "heartbeat") {
        kept.push(item);
      }
    }
    this.#inbox = kept.slice(-100);
    this.#head = 0;
    this.#queued = 0;
    for (const key of dropped) {
      const sub = this.#subs.get(key);
      if (sub !== undefined && sub.state === "live") {
        sub.skipping = true;
        this.#stale.add(key);
      }
    }
  }

  /** A reader is back after an overflow: fresh snapshots for what it missed. */
  #resyncStale(): void {
    const stale = this.#stale;
    this.#stale = new Set();
    for (const key of stale) {
      const sub = this.#subs.get(key);
      if (sub?.skipping) {
        this.#resync(sub, "overflow");
      }
    }
  }

  #take(): StreamMessage | undefined {
    if (this.#head >= this.#inbox.length) {
      return undefined;
    }
    const item = this.#inbox[this.#head] as StreamMessage;
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#inbox.length) {
      this.#inbox = this.#inbox.slice(this.#head);
      this.#head = 0;
    }
    if (isChannelMessage(item) || item.type === "heartbeat") {
      this.#queued -= 1;
    }
    return item;
  }

  /** The next message or event; `done` once the stream is closed; throws the error that ended it. */
  async next(): Promise<IteratorResult<StreamMessage, undefined>> {
    const item = await this.#read(null);
    return item === null ? { done: true, value: undefined } : { done: false, value: item };
  }

  async #read(deadline: number | null): Promise<StreamMessage | null> {
    for (;;) {
      if (this.#closed) {
        return null;
      }
      if (this.#stale.size > 0) {
        this.#resyncStale();
      }
      const item = this.#take();
      if (item !== undefined) {
        return item;
      }
      if (this.#fatal !== null) {
        throw this.#fatal;
      }
      if (!this.#started) {
        throw new Error("connect first: use `await client.stream()`");
      }
      if (deadline !== null && Date.now() >= deadline) {
        return null;
      }
      await this.#wait(deadline);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamMessage, undefined> {
    return {
      next: () => this.next(),
      // Leaving a `for await` loop does not close the stream: call close() for that.
      return: async () => ({ done: true, value: undefined }),
    };
  }

  /** The next message or event; `null` after `timeoutMs` without one, or once the stream is closed. */
  receive(timeoutMs?: number): Promise<StreamMessage | null> {
    return this.#read(timeoutMs === undefined ? null : Date.now() + timeoutMs);
  }

  /** Every message and event already buffered, without waiting. */
  drain(): StreamMessage[] {
    const items = this.#inbox.slice(this.#head);
    this.#inbox = [];
    this.#head = 0;
    this.#queued = 0;
    if (this.#stale.size > 0) {
      this.#resyncStale();
    }
    return items;
  }

  // ---------------------------------------------------------------------------- requests

  #newId(): number {
    this.#nextId += 1;
    return this.#nextId;
  }

  /** Send a request and wait for its reply; an `error` reply throws its error class. */
  async #request(message: JsonObject, generation?: number): Promise<JsonObject> {
    const op = String(message.op);
    const conn = this.#conn;
    if (conn === null || (generation !== undefined && generation !== this.#generation)) {
      if (this.#fatal !== null) {
        throw this.#fatal;
      }
      throw new NetworkError(`the stream is not connected (reconnecting); ${op} was not sent`);
    }
    const id = this.#newId();
    const deferred = new Deferred<JsonObject>();
    conn.pending.set(id, { deferred, op });
    let reply: JsonObject;
    try {
      conn.send({ ...message, id });
      reply = await withTimeout(
        deferred.promise,
        this.requestTimeoutMs,
        () => new NetworkError(`no reply to ${op} within ${this.requestTimeoutMs} ms; its outcome is unknown`),
      );
    } finally {
      conn.pending.delete(id);
    }
    if (reply.type === "error") {
      throw replyError(reply);
    }
    return reply;
  }

  /** `ping`: the server's time and stored `exchangeSeq`; when it returns, every update up to it has been applied. */
  async ping(): Promise<Pong> {
    this.#checkOpen();
    return parsePong(await this.#request({ op: "ping" }));
  }

  // ---------------------------------------------------------------------------- subscriptions

  /**
   * Subscribe to a channel and wait for its snapshot, which is returned (and also yielded by the
   * iteration). Public: `orderbook` (`depth` 1–100, default 20), `trades`, `ticker` (each with a
   * `marketId`) and `markets`. Private (needs a key): `orders`, `fills`, `positions`, `balance`.
   * Subscribing again to the same stream returns its last snapshot.
   */
  async subscribe(
    channel: Channel,
    marketId?: string | null,
    options: { depth?: number } = {},
  ): Promise<ChannelMessage> {
    this.#checkOpen();
    const sub = this.#newSub(channel, marketId ?? null, options.depth);
    const existing = this.#subs.get(sub.key);
    if (existing !== undefined) {
      if (existing.depth !== sub.depth) {
        throw new InvalidRequestError(
          `already subscribed to ${channel} of ${marketId} at depth ${existing.depth}: the stream's messages do not ` +
            "say which depth they belong to, so one stream holds one depth a market",
          { details: { field: "depth" } },
        );
      }
      if (existing.state === "unsubscribing") {
        throw new InvalidRequestError(`${channel} ${marketId ?? ""} is being unsubscribed`, {
          details: { field: "channel" },
        });
      }
      return existing.lastSnapshot ?? existing.ready.promise;
    }
    this.#subs.set(sub.key, sub);
    if (this.#conn !== null) {
      try {
        await this.#request({ op: "subscribe", ...sub.fields() });
      } catch (error) {
        if (!(error instanceof NetworkError)) {
          if (this.#subs.get(sub.key) === sub) {
            this.#subs.delete(sub.key);
          }
          if (error instanceof BallastError) {
            sub.fail(error);
          }
          throw error;
        }
        // subscribed again once reconnected
      }
    }
    return sub.ready.promise;
  }

  #newSub(channel: string, marketId: string | null, depth: number | undefined): Sub {
    const isPublic = (PUBLIC_CHANNELS as readonly string[]).includes(channel);
    const isPrivate = (PRIVATE_CHANNELS as readonly string[]).includes(channel);
    if (!isPublic && !isPrivate) {
      throw new InvalidRequestError(`unknown channel ${JSON.stringify(channel)}`, { details: { field: "channel" } });
    }
    if (isPrivate || channel === "markets") {
      if (marketId !== null) {
        throw new InvalidRequestError(`the ${channel} channel takes no market_id`, { details: { field: "market_id" } });
      }
    } else if (!marketId) {
      throw new InvalidRequestError(`the ${channel} channel needs a market_id`, { details: { field: "market_id" } });
    }
    let level: number | null = null;
    if (channel === "orderbook") {
      level = depth ?? 20;
      if (!Number.isInteger(level) || level < 1 || level > 100) {
        throw new InvalidRequestError("depth must be 1 to 100", { details: { field: "depth" } });
      }
    } else if (depth !== undefined) {
      throw new InvalidRequestError("only the orderbook channel takes a depth", { details: { field: "depth" } });
    }
    return new Sub(channel as Channel, marketId, level);
  }

  /** Stop a subscription (its book, if any, is dropped). */
  async unsubscribe(channel: Channel, marketId?: string | null): Promise<void> {
    this.#checkOpen();
    const sub = this.#subs.get(subKey(channel, marketId ?? null));
    if (sub === undefined) {
      throw new InvalidRequestError(`not subscribed to ${channel} ${marketId ?? ""}`.trimEnd(), {
        details: { field: "channel" },
      });
    }
    sub.state = "unsubscribing";
    sub.unsynced();
    try {
      if (this.#conn !== null) {
        await this.#request({ op: "unsubscribe", ...sub.fields() });
      }
    } catch (error) {
      if (!(error instanceof NetworkError || error instanceof InvalidRequestError)) {
        throw error;
      }
      // no connection, or a resync had it unsubscribed already: gone either way
    } finally {
      if (this.#subs.get(sub.key) === sub) {
        this.#subs.delete(sub.key);
      }
      sub.fail(new InvalidRequestError("unsubscribed", { details: { field: "channel" } }));
    }
  }

  get subscriptions(): Subscription[] {
    return [...this.#subs.values()].map((s) => ({
      channel: s.channel,
      marketId: s.marketId,
      depth: s.depth,
      seq: s.seq,
      synced: s.state === "live",
    }));
  }

  /** The live book of a market this stream subscribed to on `orderbook`. */
  book(marketId: string): LocalOrderBook {
    const sub = this.#subs.get(subKey("orderbook", marketId));
    if (sub?.book == null) {
      throw new Error(`not subscribed to the orderbook of ${JSON.stringify(marketId)}`);
    }
    return sub.book;
  }

  /** Subscribe to a market's `orderbook` (unless subscribed) and return its `LocalOrderBook` once the snapshot is in. */
  async orderBook(marketId: string, depth = 20): Promise<LocalOrderBook> {
    await this.subscribe("orderbook", marketId, { depth });
    return this.book(marketId);
  }

  /** Unsubscribe and subscribe again for a fresh snapshot (in the background). */
  #resync(sub: Sub, reason: ResyncReason): void {
    if (sub.state !== "live") {
      return;
    }
    sub.state = "resyncing";
    sub.reason = reason;
    sub.unsynced();
    this.#spawn(this.#resubscribe(sub, this.#generation, true));
  }

  #resubscribeAll(): void {
    const generation = this.#generation;
    for (const [key, sub] of [...this.#subs]) {
      if (sub.state === "unsubscribing") {
        this.#subs.delete(key);
        continue;
      }
      this.#spawn(this.#resubscribe(sub, generation, false));
    }
  }

  async #resubscribe(sub: Sub, generation: number, unsubscribeFirst: boolean): Promise<void> {
    try {
      if (unsubscribeFirst) {
        try {
          await this.#request({ op: "unsubscribe", ...sub.fields() }, generation);
        } catch (error) {
          if (!(error instanceof InvalidRequestError)) {
            throw error;
          }
          // not subscribed on the server: fine, subscribe below
        }
      }
      if (this.#subs.get(sub.key) !== sub || sub.state === "unsubscribing") {
        return;
      }
      await this.#request({ op: "subscribe", ...sub.fields() }, generation);
    } catch (error) {
      if (error instanceof NetworkError) {
        return; // the connection dropped: the reconnect subscribes it again
      }
      if (error instanceof BallastError && generation === this.#generation) {
        this.#drop(sub, error);
      }
    }
  }

  /** Give a subscription up: its waiters fail and the reader hears why. */
  #drop(sub: Sub, error: BallastError): void {
    if (this.#subs.get(sub.key) !== sub) {
      return;
    }
    this.#subs.delete(sub.key);
    sub.unsynced();
    sub.fail(error);
    this.#deliver({
      type: "subscription_failed",
      channel: sub.channel,
      marketId: sub.marketId,
      error,
      time: new Date(),
    });
  }

  async #unsubscribeQuietly(sub: Sub): Promise<void> {
    try {
      await this.#request({ op: "unsubscribe", ...sub.fields() });
    } catch {
      // gone either way
    }
  }

  #spawn(task: Promise<void>): void {
    task.catch(() => undefined);
  }

  // ---------------------------------------------------------------------------- order entry

  /** An order-entry request; a 429 is retried as REST retries it (it did nothing). */
  async #trade(op: string, params: JsonObject): Promise<JsonObject> {
    this.#checkOpen();
    let attempt = 0;
    for (;;) {
      let reply: JsonObject;
      try {
        reply = await this.#request({ op, params });
      } catch (error) {
        if (error instanceof RateLimitError) {
          const delay = this.#host.retry.delay(attempt, true, error);
          if (delay !== null) {
            attempt += 1;
            await sleep(delay);
            continue;
          }
        }
        throw error;
      }
      const data = reply.data;
      if (reply.type !== "result" || !isObject(data)) {
        throw new InvalidResponseError(`${op}: the reply has no result`, { details: { reply } });
      }
      return data;
    }
  }

  /**
   * `placeOrder` over the socket: the same parameters, result and errors as the client's (a
   * `clientOrderId` is generated unless given; a retry with the same id returns the first order).
   */
  async placeOrder(params: PlaceOrderParams): Promise<Order> {
    this.#checkOpen();
    const body = orderBody(params);
    if (this.validateOrders) {
      const error = await this.#host.precheck(body);
      if (error !== null) {
        throw error;
      }
    }
    return parseOrder(await this.#trade("place_order", body));
  }

  /** `amendOrder` over the socket: a new price and/or a new total size. */
  async amendOrder(orderId: string, params: AmendOrderParams): Promise<Order> {
    return parseOrder(await this.#trade("amend_order", { order_id: orderId, ...amendBody(params) }));
  }

  /** `cancelOrder` over the socket; returns the order, canceled. */
  async cancelOrder(orderId: string): Promise<Order> {
    return parseOrder(await this.#trade("cancel_order", { order_id: orderId }));
  }

  /** `cancelAll` over the socket: every open order, or those of `marketId`. */
  async cancelAll(options: { marketId?: string } = {}): Promise<CanceledOrders> {
    const params: JsonObject = options.marketId === undefined ? {} : { market_id: options.marketId };
    return parseCanceledOrders(await this.#trade("cancel_all", params));
  }

  /**
   * `heartbeat` over the socket: arm or feed this key's dead-man switch, as the client's
   * `heartbeat` (`0` disarms it). An open but silent socket lets it fire.
   */
  async heartbeat(timeoutS: number): Promise<DeadManSwitch> {
    return parseDeadManSwitch(await this.#trade("heartbeat", { timeout_s: timeoutS }));
  }

  /** `create_order_group` over the socket, as the client's `createOrderGroup`. */
  async createOrderGroup(params: CreateOrderGroupParams): Promise<OrderGroup> {
    return parseOrderGroup(await this.#trade("create_order_group", orderGroupBody(params)));
  }

  /** `list_order_groups` over the socket: the account's order groups, oldest first. */
  async getOrderGroups(): Promise<OrderGroup[]> {
    const data = await this.#trade("list_order_groups", {});
    const groups = data.order_groups;
    if (!Array.isArray(groups)) {
      throw new InvalidResponseError("list_order_groups: no order_groups", { details: { reply: data } });
    }
    return groups.map(parseOrderGroup);
  }

  /** `get_order_group` over the socket. */
  async getOrderGroup(orderGroupId: string): Promise<OrderGroup> {
    return parseOrderGroup(await this.#trade("get_order_group", { order_group_id: orderGroupId }));
  }

  /** `reset_order_group` over the socket: the count starts afresh and a triggered group takes orders again. */
  async resetOrderGroup(orderGroupId: string): Promise<OrderGroup> {
    return parseOrderGroup(await this.#trade("reset_order_group", { order_group_id: orderGroupId }));
  }

  /** `delete_order_group` over the socket: cancel the group's open orders and delete it. */
  async deleteOrderGroup(orderGroupId: string): Promise<DeletedOrderGroup> {
    return parseDeletedOrderGroup(await this.#trade("delete_order_group", { order_group_id: orderGroupId }));
  }

  /** Turn cancel-on-disconnect on or off for the orders placed from now on (kept across reconnects). */
  async setCancelOnDisconnect(enabled: boolean): Promise<boolean> {
    this.#checkOpen();
    const reply = await this.#request({ op: "cancel_on_disconnect", enabled: Boolean(enabled) });
    this.cancelOnDisconnect = typeof reply.enabled === "boolean" ? reply.enabled : Boolean(enabled);
    return this.cancelOnDisconnect;
  }
}
