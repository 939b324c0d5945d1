/**
 * `LocalOrderBook`: a market's aggregated book kept in sync from the stream's `orderbook`
 * channel (a snapshot, then updates that name the levels whose size changed; size 0 removes one).
 */

import { type DecimalString, decimal, type Numeric } from "./decimal.js";
import { type BookLevel, type BookTop, bookTop, type OrderBook } from "./models.js";

function byPrice(a: BookLevel, b: BookLevel): number {
  const x = Number(a.price);
  const y = Number(b.price);
  return x !== y ? x - y : decimal.cmp(a.price, b.price);
}

/**
 * One market's book to the subscribed `depth`: bids best (highest) first, asks best (lowest)
 * first, prices as decimal strings and sizes in contracts.
 *
 * The stream applies every `orderbook` message to it as it is read, so it is current even when
 * nobody iterates the stream. `seq` is the last message's sequence number on its subscription;
 * `exchangeSeq` is the exchange event sequence at which the book is known to hold: the last book
 * message's, advanced by every later heartbeat and `ping` reply. It equals `seq` of
 * `getOrderbook()` when the two show the same moment.
 */
export class LocalOrderBook {
  readonly marketId: string;
  readonly depth: number;
  seq: number | null = null;
  exchangeSeq: number | null = null;
  time: Date | null = null;
  /**
   * False until the first snapshot, and again while the stream resyncs it (after a disconnect or
   * a lost message): then it shows the last state it knew.
   */
  synced = false;
  #bids = new Map<DecimalString, number>();
  #asks = new Map<DecimalString, number>();
  #sorted: { bids: BookLevel[]; asks: BookLevel[]; top: BookTop } | null = null;

  constructor(marketId: string, depth: number) {
    this.marketId = marketId;
    this.depth = depth;
  }

  /** Replace the whole book (a snapshot). */
  reset(
    bids: Iterable<BookLevel>,
    asks: Iterable<BookLevel>,
    at: { seq?: number; exchangeSeq?: number; time?: Date } = {},
  ): void {
    this.#bids = new Map();
    this.#asks = new Map();
    for (const level of bids) {
      if (level.size > 0) {
        this.#bids.set(decimal.normalize(level.price), level.size);
      }
    }
    for (const level of asks) {
      if (level.size > 0) {
        this.#asks.set(decimal.normalize(level.price), level.size);
      }
    }
    this.#sorted = null;
    this.seq = at.seq ?? null;
    this.exchangeSeq = at.exchangeSeq ?? null;
    this.time = at.time ?? null;
    this.synced = true;
  }

  /** Apply changed levels (an update): a level's new size, or 0 to remove it. */
  update(
    bids: Iterable<BookLevel>,
    asks: Iterable<BookLevel>,
    at: { seq?: number; exchangeSeq?: number; time?: Date } = {},
  ): void {
    for (const [side, levels] of [
      [this.#bids, bids],
      [this.#asks, asks],
    ] as const) {
      for (const level of levels) {
        const price = decimal.normalize(level.price);
        if (level.size > 0) {
          side.set(price, level.size);
        } else {
          side.delete(price);
        }
      }
    }
    this.#sorted = null;
    if (at.seq !== undefined) {
      this.seq = at.seq;
    }
    if (at.exchangeSeq !== undefined) {
      this.exchangeSeq = at.exchangeSeq;
    }
    if (at.time !== undefined) {
      this.time = at.time;
    }
  }

  /** Everything up to `exchangeSeq` has been applied (a heartbeat or pong said so). */
  caughtUp(exchangeSeq: number): void {
    if (this.exchangeSeq === null || exchangeSeq > this.exchangeSeq) {
      this.exchangeSeq = exchangeSeq;
    }
  }

  #levels(): { bids: BookLevel[]; asks: BookLevel[]; top: BookTop } {
    if (this.#sorted === null) {
      const bids = [...this.#bids].map(([price, size]) => ({ price, size })).sort((a, b) => byPrice(b, a));
      const asks = [...this.#asks].map(([price, size]) => ({ price, size })).sort(byPrice);
      this.#sorted = { bids, asks, top: bookTop(bids, asks) };
    }
    return this.#sorted;
  }

  /** Bid levels, best (highest price) first. */
  get bids(): BookLevel[] {
    return [...this.#levels().bids];
  }

  /** Ask levels, best (lowest price) first. */
  get asks(): BookLevel[] {
    return [...this.#levels().asks];
  }

  get bestBid(): DecimalString | null {
    return this.#levels().top.bestBid;
  }

  get bestAsk(): DecimalString | null {
    return this.#levels().top.bestAsk;
  }

  get spread(): DecimalString | null {
    return this.#levels().top.spread;
  }

  get mid(): DecimalString | null {
    return this.#levels().top.mid;
  }

  /** The number of price levels, both sides. */
  get size(): number {
    return this.#bids.size + this.#asks.size;
  }

  /** The size resting at `price` on `"bid"`/`"buy"` or `"ask"`/`"sell"` (0 if none). */
  sizeAt(side: "bid" | "bids" | "buy" | "ask" | "asks" | "sell", price: Numeric): number {
    const levels = side === "bid" || side === "bids" || side === "buy" ? this.#bids : this.#asks;
    return levels.get(decimal.normalize(price)) ?? 0;
  }

  /** An independent copy (the stream keeps changing the original). */
  copy(): LocalOrderBook {
    const twin = new LocalOrderBook(this.marketId, this.depth);
    twin.#bids = new Map(this.#bids);
    twin.#asks = new Map(this.#asks);
    twin.seq = this.seq;
    twin.exchangeSeq = this.exchangeSeq;
    twin.time = this.time;
    twin.synced = this.synced;
    return twin;
  }

  /** The book as the REST model (`seq` is `exchangeSeq`, as REST numbers it). */
  toOrderBook(): OrderBook {
    const { bids, asks, top } = this.#levels();
    return {
      marketId: this.marketId,
      timestamp: this.time ?? new Date(),
      seq: this.exchangeSeq,
      bids: [...bids],
      asks: [...asks],
      ...top,
      extra: {},
    };
  }

  toString(): string {
    return `LocalOrderBook(${this.marketId}, depth=${this.depth}, bid=${this.bestBid}, ask=${this.bestAsk}, seq=${this.seq}, exchangeSeq=${this.exchangeSeq})`;
  }
}
