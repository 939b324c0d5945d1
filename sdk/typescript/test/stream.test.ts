/** The stream against a real server: market data and the LocalOrderBook under random order flow,
 * private channels behind the welcome-nonce auth, order entry over the socket equal to REST. */

import assert from "node:assert/strict";
import { before, test } from "node:test";
import {
  BallastClient,
  type ChannelMessage,
  decimal,
  InsufficientBalanceError,
  InvalidPriceError,
  InvalidRequestError,
  InvalidSignatureError,
  MarketNotFoundError,
  type Order,
  OrderNotCancelableError,
  type StreamMessage,
  UnauthorizedError,
} from "@ballast/sdk";
import { sharedServer, type TestServer, waitFor } from "./harness.js";
import { assertBookMatchesRest, levels, newClient, readUntil, seeded } from "./util.js";

let server: TestServer;

before(async () => {
  server = await sharedServer();
});

function isChannel(message: StreamMessage, channel: string, type?: "snapshot" | "update"): boolean {
  return "channel" in message && message.channel === channel && (type === undefined || message.type === type);
}

test("public channels, and a LocalOrderBook equal to REST's under random order flow", async () => {
  const market = await server.market();
  const { client: alice } = await newClient(server, 100_000);
  const { client: bob } = await newClient(server, 100_000);
  const watcher = new BallastClient({ baseUrl: server.api }); // no key: public channels only
  const stream = await watcher.stream();
  try {
    const [connected] = stream.drain();
    assert.deepEqual([connected?.type, stream.accountId], ["connected", null]);
    const book = await stream.orderBook(market, 10);
    assert.deepEqual([book.synced, book.bids, book.asks, book.depth], [true, [], [], 10]);
    const trades = await stream.subscribe("trades", market);
    assert.equal(trades.channel, "trades");
    assert.deepEqual(trades.channel === "trades" && trades.trades, []);
    const ticker = await stream.subscribe("ticker", market);
    assert.ok(ticker.channel === "ticker" && ticker.ticker.bid === null);
    const markets = await stream.subscribe("markets");
    assert.ok(
      markets.channel === "markets" && markets.markets.some((m) => m.marketId === market && m.status === "open"),
    );
    assert.deepEqual(
      stream.subscriptions.map((s) => [s.channel, s.marketId, s.depth, s.synced]),
      [
        ["orderbook", market, 10, true],
        ["trades", market, null, true],
        ["ticker", market, null, true],
        ["markets", null, null, true],
      ],
    );

    const random = seeded(14);
    const resting: [BallastClient, Order][] = [];
    for (let step = 0; step < 80; step += 1) {
      const trader = random() < 0.5 ? alice : bob;
      const roll = random();
      if (roll < 0.6 || resting.length === 0) {
        const side = random() < 0.5 ? "buy" : "sell";
        const ticks = side === "buy" ? 400 + Math.floor(random() * 60) : 440 + Math.floor(random() * 60);
        const order = await trader.placeOrder({
          marketId: market,
          side,
          price: decimal.mul(ticks, "0.001"),
          size: 1 + Math.floor(random() * 20),
        });
        if (order.isOpen) {
          resting.push([trader, order]);
        }
      } else if (roll < 0.85) {
        const [owner, order] = resting.splice(Math.floor(random() * resting.length), 1)[0] as [BallastClient, Order];
        await owner.cancelOrder(order.id).catch((error: unknown) => {
          assert.ok(error instanceof OrderNotCancelableError); // filled meanwhile
        });
      } else {
        const [owner, order] = resting[Math.floor(random() * resting.length)] as [BallastClient, Order];
        await owner.amendOrder(order.id, { size: 1 + Math.floor(random() * 5) }).catch((error: unknown) => {
          assert.ok(error instanceof OrderNotCancelableError || error instanceof InvalidRequestError, String(error));
        });
      }
      if (step % 20 === 19) {
        await assertBookMatchesRest(stream, alice, market, 10);
      }
    }
    await assertBookMatchesRest(stream, alice, market, 10);
    // What was read agrees with the book: every update's seq rose by one from the snapshot.
    const read = stream.drain().filter((m): m is ChannelMessage => "channel" in m && m.channel === "orderbook");
    const seqs = read.map((m) => m.seq);
    assert.ok(seqs.length > 10);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => (seqs[0] as number) + i),
    );
    const restTrades = await alice.getTrades(market);
    assert.ok(restTrades.length > 0, "the flow crossed at least once");
    assert.equal(book.seq, seqs[seqs.length - 1]);
  } finally {
    await stream.close();
  }
  assert.equal(stream.closed, true);
  assert.equal(await stream.receive(10), null);
});

test("trades and ticker messages are the REST models", async () => {
  const market = await server.market();
  const { client: maker } = await newClient(server);
  const { client: taker } = await newClient(server);
  const stream = await new BallastClient({ baseUrl: server.api }).stream();
  try {
    await stream.subscribe("trades", market);
    await stream.subscribe("ticker", market);
    await maker.placeOrder({ marketId: market, side: "sell", price: "0.55", size: 4 });
    await taker.placeOrder({ marketId: market, side: "buy", price: "0.55", size: 3 });
    const seen = await readUntil(stream, (m) => isChannel(m, "trades", "update"));
    const update = seen[seen.length - 1];
    assert.ok(update !== undefined && update.type === "update" && update.channel === "trades");
    const [rest] = await taker.getTrades(market);
    assert.deepEqual(update.trades, [rest]);
    const ticks = await readUntil(
      stream,
      (m) => m.type === "update" && m.channel === "ticker" && m.ticker.lastPrice === "0.55",
    );
    const tick = ticks[ticks.length - 1];
    assert.ok(tick?.type === "update" && tick.channel === "ticker");
    assert.deepEqual([tick.ticker.ask, tick.ticker.lastPrice, tick.ticker.volume24h], ["0.55", "0.55", 3]);
    // One side of the book and no trade a day ago: neither a midpoint nor a change yet.
    assert.deepEqual([tick.ticker.midpoint, tick.ticker.change24h], [null, null]);
  } finally {
    await stream.close();
  }
});

test("private channels after the welcome-nonce auth", async () => {
  const market = await server.market();
  const { client, account } = await newClient(server, 1000);
  const { client: other } = await newClient(server);
  const stream = await client.stream();
  try {
    const [connected] = stream.drain();
    assert.ok(connected?.type === "connected" && connected.accountId === account.account_id && !connected.reconnect);
    assert.equal(stream.accountId, account.account_id);
    const orders = await stream.subscribe("orders");
    assert.ok(orders.channel === "orders" && orders.orders.length === 0);
    await stream.subscribe("fills");
    await stream.subscribe("positions");
    const balance = await stream.subscribe("balance");
    assert.ok(balance.channel === "balance" && balance.balance.totalBalance === "1000");
    const order = await client.placeOrder({ marketId: market, side: "buy", price: "0.25", size: 8 });
    await other.placeOrder({ marketId: market, side: "sell", price: "0.25", size: 3 });
    const seen = await readUntil(stream, (m) => m.type === "update" && m.channel === "positions");
    const updates = seen.filter((m): m is ChannelMessage => "channel" in m);
    const events = updates.flatMap((m) => (m.channel === "orders" ? m.orders.map((o) => [o.event, o.filledSize]) : []));
    assert.deepEqual(events.slice(0, 2), [
      ["accepted", 0],
      ["filled", 3],
    ]);
    const fill = updates.find((m) => m.channel === "fills" && m.type === "update");
    assert.ok(fill?.channel === "fills");
    assert.deepEqual(fill.fills, await client.getFills());
    const position = updates.find((m) => m.channel === "positions" && m.type === "update");
    assert.ok(position?.channel === "positions");
    assert.deepEqual(
      position.positions.map((p) => [p.marketId, p.size]),
      [[market, 3]],
    );
    const balances = await readUntil(
      stream,
      (m) => m.type === "update" && m.channel === "balance" && m.balance.reserved !== "0",
    ).catch(() => seen);
    const rest = await client.getBalance();
    const last = [...seen, ...balances].filter((m) => m.type === "update" && m.channel === "balance").pop();
    assert.ok(last?.type === "update" && last.channel === "balance");
    assert.equal(last.balance.totalBalance, rest.totalBalance);
    assert.equal(order.status, "open");
  } finally {
    await stream.close();
  }
});

test("auth refused: a wrong secret, an unknown key", async () => {
  const { account } = await newClient(server);
  const forger = new BallastClient({ apiKey: account.api_key, apiSecret: "bmkt_secret_wrong", baseUrl: server.api });
  await assert.rejects(forger.stream(), InvalidSignatureError);
  const stranger = new BallastClient({ apiKey: "bmkt_test_nobody", apiSecret: "bmkt_secret_x", baseUrl: server.api });
  await assert.rejects(stranger.stream(), UnauthorizedError);
});

/** An order's fields that do not depend on when or where it was placed. */
function shape(order: Order): unknown[] {
  return [
    order.marketId,
    order.side,
    order.type,
    order.price,
    order.size,
    order.filledSize,
    order.remainingSize,
    order.status,
    order.timeInForce,
    order.postOnly,
    order.reduceOnly,
    order.stp,
    order.fills.map((f) => [f.price, f.size, f.fee]),
  ];
}

test("order entry over the socket answers as REST does", async () => {
  const viaSocket = await server.market();
  const viaRest = await server.market();
  const { client: rest } = await newClient(server, 500);
  const { client: trader } = await newClient(server, 500);
  const { client: maker } = await newClient(server);
  for (const market of [viaSocket, viaRest]) {
    await maker.placeOrder({ marketId: market, side: "sell", price: "0.6", size: 5 });
  }
  const stream = await trader.stream();
  try {
    const params = [
      { side: "buy" as const, price: "0.4", size: 10 },
      { side: "buy" as const, price: "0.6", size: 3, timeInForce: "IOC" as const },
      { side: "sell" as const, price: "0.9", size: 2, postOnly: true },
      { side: "buy" as const, orderType: "market" as const, size: 1 },
    ];
    for (const p of params) {
      const socketOrder = await stream.placeOrder({ marketId: viaSocket, ...p });
      const restOrder = await rest.placeOrder({ marketId: viaRest, ...p });
      assert.deepEqual(shape(socketOrder), [viaSocket, ...shape(restOrder).slice(1)]);
      assert.deepEqual(shape(await trader.getOrder(socketOrder.id)), shape({ ...socketOrder, fills: [] }));
    }
    // Amend, cancel, cancel all: the same answers.
    const [a, b] = await Promise.all([
      stream.placeOrder({ marketId: viaSocket, side: "buy", price: "0.3", size: 4 }),
      rest.placeOrder({ marketId: viaRest, side: "buy", price: "0.3", size: 4 }),
    ]);
    assert.ok(a && b);
    assert.deepEqual(
      shape(await stream.amendOrder(a.id, { price: "0.31", size: 3 })).slice(1),
      shape(await rest.amendOrder(b.id, { price: "0.31", size: 3 })).slice(1),
    );
    assert.deepEqual(shape(await stream.cancelOrder(a.id)).slice(1), shape(await rest.cancelOrder(b.id)).slice(1));
    const socketAll = await stream.cancelAll({ marketId: viaSocket });
    const restAll = await rest.cancelAll({ marketId: viaRest });
    assert.equal(socketAll.count, restAll.count);
    // The same errors, from the server and from the checks before sending.
    const errors = [
      [{ marketId: viaSocket, side: "buy" as const, price: "0.5", size: 5000 }, InsufficientBalanceError],
      [{ marketId: "no-such-market", side: "buy" as const, price: "0.5", size: 1 }, MarketNotFoundError],
      [{ marketId: viaSocket, side: "buy" as const, price: "0.5005", size: 1 }, InvalidPriceError],
    ] as const;
    for (const [p, cls] of errors) {
      const socketError = await stream.placeOrder(p).catch((e: unknown) => e);
      const restError = await rest.placeOrder(p).catch((e: unknown) => e);
      assert.ok(socketError instanceof cls && restError instanceof cls, cls.name);
      assert.deepEqual([socketError.code, socketError.status], [restError.code, restError.status]);
    }
    await assert.rejects(stream.cancelOrder(a.id), OrderNotCancelableError);
    // A client order id binds once, over the socket too.
    const first = await stream.placeOrder({
      marketId: viaSocket,
      side: "buy",
      price: "0.2",
      size: 1,
      clientOrderId: "sock-1",
    });
    const again = await stream.placeOrder({
      marketId: viaSocket,
      side: "buy",
      price: "0.2",
      size: 1,
      clientOrderId: "sock-1",
    });
    assert.equal(again.id, first.id);
    const viaRestToo = await trader.placeOrder({
      marketId: viaSocket,
      side: "buy",
      price: "0.2",
      size: 1,
      clientOrderId: "sock-1",
    });
    assert.equal(viaRestToo.id, first.id);
    // Pipelined: many in flight at once, each answer matched to its request.
    const many = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        stream.placeOrder({
          marketId: viaSocket,
          side: "buy",
          price: decimal.add("0.1", decimal.mul(i, "0.001")),
          size: 1,
        }),
      ),
    );
    assert.deepEqual(
      many.map((o) => o.price),
      Array.from({ length: 10 }, (_, i) => decimal.add("0.1", decimal.mul(i, "0.001"))),
    );
    assert.equal(new Set(many.map((o) => o.id)).size, 10);
  } finally {
    await stream.close();
  }
});

test("cancel on disconnect cancels this stream's orders when it drops", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  const stream = await client.stream({ cancelOnDisconnect: true });
  const viaSocket = await stream.placeOrder({ marketId: market, side: "buy", price: "0.3", size: 1 });
  const viaRest = await client.placeOrder({ marketId: market, side: "buy", price: "0.3", size: 1 });
  assert.equal(await stream.setCancelOnDisconnect(true), true);
  await stream.close();
  await waitFor("the socket's order to be canceled", async () =>
    (await client.getOrder(viaSocket.id)).status === "canceled" ? true : undefined,
  );
  assert.equal((await client.getOrder(viaRest.id)).status, "open");
});

test("an overflowing reader gets fresh snapshots, and the book stays current", async () => {
  const market = await server.market();
  const { client } = await newClient(server, 100_000);
  const stream = await new BallastClient({ baseUrl: server.api }).stream({ maxQueue: 5 });
  try {
    await stream.orderBook(market, 5);
    let updates = 0;
    const off = stream.on("update", () => {
      updates += 1;
    });
    for (let i = 0; i < 12; i += 1) {
      await client.placeOrder({
        marketId: market,
        side: "buy",
        price: decimal.add("0.2", decimal.mul(i, "0.01")),
        size: 1,
      });
    }
    await assertBookMatchesRest(stream, client, market, 5);
    const seen = await readUntil(stream, (m) => m.type === "resynced");
    const resynced = seen[seen.length - 1];
    assert.ok(resynced?.type === "resynced");
    assert.deepEqual([resynced.channel, resynced.marketId, resynced.reason], ["orderbook", market, "overflow"]);
    const snapshot = seen[seen.length - 2];
    assert.ok(snapshot !== undefined && isChannel(snapshot, "orderbook", "snapshot"));
    // Listeners hear everything, dropped from the buffer or not.
    const read = seen.filter((m) => isChannel(m, "orderbook", "update")).length;
    assert.ok(updates > read, `${updates} heard, ${read} read`);
    off();
    await assertBookMatchesRest(stream, client, market, 5);
    assert.deepEqual(
      levels(stream.book(market)).map((side) => side.length),
      [5, 0],
    );
  } finally {
    await stream.close();
  }
});

test("subscription rules are checked before sending", async () => {
  const market = await server.market();
  const stream = await new BallastClient({ baseUrl: server.api }).stream();
  try {
    await assert.rejects(stream.subscribe("orderbook"), InvalidRequestError);
    await assert.rejects(stream.subscribe("markets", market), InvalidRequestError);
    await assert.rejects(stream.subscribe("orderbook", market, { depth: 101 }), InvalidRequestError);
    await assert.rejects(stream.subscribe("trades", market, { depth: 5 }), InvalidRequestError);
    await assert.rejects(stream.subscribe("orderbook", "no-such-market"), MarketNotFoundError);
    await assert.rejects(stream.subscribe("orders"), UnauthorizedError);
    await stream.subscribe("orderbook", market, { depth: 5 });
    await assert.rejects(stream.subscribe("orderbook", market, { depth: 6 }), InvalidRequestError);
    await stream.unsubscribe("orderbook", market);
    assert.deepEqual(stream.subscriptions, []);
    assert.throws(() => stream.book(market));
    await assert.rejects(stream.unsubscribe("orderbook", market), InvalidRequestError);
  } finally {
    await stream.close();
  }
});
