// The public market-data stream (docs/websocket.md): one market's book, trades and ticker.
//
// Each subscription's `seq` rises by one per message; a jump means a message was lost, so the
// connection is dropped and made again for fresh snapshots. Closed connections reconnect with
// a growing delay.

export class MarketFeed {
  /**
   * @param {string} marketId
   * @param {{depth?: number, onBook?: Function, onTrades?: Function, onTicker?: Function,
   *          onMarket?: Function, onState?: Function}} handlers
   */
  constructor(marketId, handlers = {}) {
    this.marketId = marketId;
    this.depth = handlers.depth || 20;
    this.handlers = handlers;
    this.bids = new Map(); // price (number) -> size
    this.asks = new Map();
    this.seqs = new Map(); // channel -> last seq
    this.closed = false;
    this.retry = 0;
    this.socket = null;
    this.timer = null;
    this.connect();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/stream`;
  }

  state(text) {
    if (this.handlers.onState) this.handlers.onState(text);
  }

  connect() {
    if (this.closed) return;
    this.state("connecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    this.seqs.clear();
    socket.addEventListener("open", () => {
      this.retry = 0;
      const market_id = this.marketId;
      const send = (message) => socket.send(JSON.stringify(message));
      send({ op: "subscribe", id: "book", channel: "orderbook", market_id, depth: this.depth });
      send({ op: "subscribe", id: "trades", channel: "trades", market_id });
      send({ op: "subscribe", id: "ticker", channel: "ticker", market_id });
      send({ op: "subscribe", id: "markets", channel: "markets" });
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket || this.closed) return;
      this.state("reconnecting");
      const wait = Math.min(10_000, 500 * 2 ** this.retry++);
      this.timer = setTimeout(() => this.connect(), wait);
    });
  }

  reconnect() {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
    this.connect();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const { type, channel } = message;
    if (type === "error") {
      console.warn("stream error", message.error);
      return;
    }
    if (type !== "snapshot" && type !== "update") return;
    if (channel !== "markets" && message.market_id !== this.marketId) return;
    const last = this.seqs.get(channel);
    if (type === "update" && last !== undefined && message.seq !== last + 1) {
      console.warn(`stream gap on ${channel}: ${last} -> ${message.seq}; resubscribing`);
      this.reconnect();
      return;
    }
    this.seqs.set(channel, message.seq);
    if (type === "snapshot" && channel === "orderbook") this.state("live");
    const data = message.data;
    if (channel === "orderbook") this.book(type, data, message.exchange_seq);
    else if (channel === "trades" && this.handlers.onTrades) {
      this.handlers.onTrades(data.trades, type === "snapshot");
    } else if (channel === "ticker" && this.handlers.onTicker) this.handlers.onTicker(data);
    else if (channel === "markets" && this.handlers.onMarket) {
      const mine = data.markets.find((m) => m.market_id === this.marketId);
      if (mine) this.handlers.onMarket(mine);
    }
  }

  book(type, data, exchangeSeq) {
    if (type === "snapshot") {
      this.bids.clear();
      this.asks.clear();
    }
    for (const [side, levels] of [
      [this.bids, data.bids],
      [this.asks, data.asks],
    ]) {
      for (const { price, size } of levels || []) {
        if (size === 0) side.delete(price);
        else side.set(price, size);
      }
    }
    if (this.handlers.onBook) {
      const bids = [...this.bids].sort((a, b) => b[0] - a[0]).slice(0, this.depth);
      const asks = [...this.asks].sort((a, b) => a[0] - b[0]).slice(0, this.depth);
      this.handlers.onBook({ bids, asks, seq: exchangeSeq });
    }
  }
}
