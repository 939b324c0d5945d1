/** Every REST method of BallastClient against a real server. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import {
  BallastClient,
  decimal,
  decodeJson,
  InvalidPriceError,
  InvalidRequestError,
  MarketNotFoundError,
  type Order,
  OrderSizeTooSmallError,
  type RateLimit,
  SettlementRecord,
  VERSION,
} from "@ballast/sdk";
import { PACKAGE_ROOT, sharedServer, type TestServer } from "./harness.js";
import { levels, newClient } from "./util.js";

let server: TestServer;

before(async () => {
  server = await sharedServer();
});

test("VERSION is package.json's", () => {
  const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };
  assert.equal(VERSION, manifest.version);
});

describe("configuration", () => {
  test("environments and URLs", () => {
    const production = new BallastClient({ apiKey: "bmkt_live_x", apiSecret: "bmkt_secret_y" });
    assert.equal(production.baseUrl, "https://api.ballastmarkets.com/v1");
    assert.equal(production.streamUrl, "wss://stream.ballastmarkets.com");
    const sandbox = new BallastClient({ environment: "sandbox" });
    assert.equal(sandbox.baseUrl, "https://api-sandbox.ballastmarkets.com/v1");
    assert.equal(sandbox.streamUrl, "wss://stream-sandbox.ballastmarkets.com");
    const local = new BallastClient({ environment: "local" });
    assert.equal(local.baseUrl, "http://127.0.0.1:8000/v1");
    assert.equal(local.streamUrl, "ws://127.0.0.1:8000/stream");
    const own = new BallastClient({ baseUrl: "https://desk.example:8443/v1/" });
    assert.equal(own.baseUrl, "https://desk.example:8443/v1");
    assert.equal(own.streamUrl, "wss://desk.example:8443/stream");
    assert.equal(own.environment, "custom");
    assert.throws(() => new BallastClient({ baseUrl: "ftp://x/v1" }), TypeError);
    assert.throws(() => new BallastClient({ apiKey: "bmkt_live_x" }), /both apiKey and apiSecret/);
  });

  test("a sandbox key without a server chosen is refused, not sent to production", () => {
    const saved = { ...process.env };
    for (const name of ["BALLAST_BASE_URL", "BALLAST_ENVIRONMENT", "BALLAST_API_KEY", "BALLAST_API_SECRET"]) {
      delete process.env[name];
    }
    try {
      assert.throws(
        () => new BallastClient({ apiKey: "bmkt_test_abc", apiSecret: "bmkt_secret_xyz" }),
        (error: Error) =>
          error instanceof TypeError && /sandbox key/.test(error.message) && /production/.test(error.message),
      );
      // Any explicit choice is fine, and so is one from the environment.
      new BallastClient({ apiKey: "bmkt_test_abc", apiSecret: "bmkt_secret_xyz", environment: "sandbox" });
      new BallastClient({ apiKey: "bmkt_test_abc", apiSecret: "bmkt_secret_xyz", baseUrl: "http://127.0.0.1:1/v1" });
      process.env.BALLAST_BASE_URL = "http://127.0.0.1:8000/v1";
      const fromEnv = new BallastClient({ apiKey: "bmkt_test_abc", apiSecret: "bmkt_secret_xyz" });
      assert.equal(fromEnv.baseUrl, "http://127.0.0.1:8000/v1");
    } finally {
      process.env = saved;
    }
  });

  test("credentials from the environment; explicit options win", () => {
    const saved = { ...process.env };
    try {
      process.env.BALLAST_API_KEY = "bmkt_test_env";
      process.env.BALLAST_API_SECRET = "bmkt_secret_env";
      process.env.BALLAST_ENVIRONMENT = "local";
      delete process.env.BALLAST_BASE_URL;
      const client = new BallastClient();
      assert.equal(client.apiKey, "bmkt_test_env");
      assert.equal(client.baseUrl, "http://127.0.0.1:8000/v1");
      const explicit = new BallastClient({ apiKey: "bmkt_live_a", apiSecret: "s", baseUrl: server.api });
      assert.equal(explicit.apiKey, "bmkt_live_a");
      assert.equal(explicit.baseUrl, server.api);
      assert.ok(!String(explicit).includes("bmkt_secret"));
    } finally {
      process.env = saved;
    }
  });
});

describe("market data", () => {
  test("server time and clock sync", async () => {
    const client = new BallastClient({ baseUrl: server.api });
    const before = Date.now();
    const time = await client.getServerTime();
    assert.ok(time.serverTime instanceof Date);
    assert.ok(Math.abs(time.timestampMs - before) < 5000);
    assert.equal(time.iso, time.serverTime.toISOString());
    const offset = await client.syncClock();
    assert.ok(Math.abs(offset) < 2000);
    assert.equal(client.clockOffsetMs, offset);
  });

  test("markets, one market, its rules; filters", async () => {
    const binary = await server.market("binary", { min_size: 5 });
    const index = await server.market("index", { tick_size: "0.1", floor: "0", cap: "100" });
    const client = new BallastClient({ baseUrl: server.api });
    const markets = await client.getMarkets();
    const ids = markets.map((m) => m.id);
    assert.ok(ids.includes(binary) && ids.includes(index));
    const indexes = await client.getMarkets({ type: "index" });
    assert.ok(indexes.every((m) => m.type === "index"));
    assert.ok(indexes.some((m) => m.id === index));
    assert.ok((await client.getMarkets({ status: "settled" })).every((m) => m.status === "settled"));
    const market = await client.getMarket(binary);
    assert.equal(market.id, binary);
    assert.equal(market.marketId, binary);
    assert.equal(market.status, "open");
    assert.ok(market.closeTime instanceof Date);
    assert.deepEqual(
      [market.rules?.tickSize, market.rules?.floor, market.rules?.cap, market.rules?.minSize],
      ["0.001", "0", "1", 5],
    );
    assert.equal(market.bid, null);
    assert.deepEqual(client.marketRules(binary), market.rules);
    const other = await client.getMarket(index);
    assert.deepEqual([other.rules?.tickSize, other.rules?.cap], ["0.1", "100"]);
    await assert.rejects(client.getMarket("no-such-market"), MarketNotFoundError);
  });

  test("order book, trades (paged), candles", async () => {
    const market = await server.market();
    const { client: maker } = await newClient(server);
    const { client: taker } = await newClient(server);
    await maker.placeOrder({ marketId: market, side: "sell", price: "0.61", size: 5 });
    await maker.placeOrder({ marketId: market, side: "sell", price: "0.6", size: 10 });
    await maker.placeOrder({ marketId: market, side: "buy", price: "0.4", size: 7 });
    const book = await taker.getOrderbook(market);
    assert.deepEqual(levels(book), [
      [["0.4", 7]],
      [
        ["0.6", 10],
        ["0.61", 5],
      ],
    ]);
    assert.deepEqual([book.bestBid, book.bestAsk, book.spread, book.mid], ["0.4", "0.6", "0.2", "0.5"]);
    assert.equal(typeof book.seq, "number");
    const shallow = await taker.getOrderbook(market, { depth: 1 });
    assert.deepEqual(levels(shallow), [[["0.4", 7]], [["0.6", 10]]]);

    for (let i = 0; i < 3; i += 1) {
      await taker.placeOrder({
        marketId: market,
        side: "buy",
        orderType: "limit",
        price: "0.6",
        size: 1,
        timeInForce: "IOC",
      });
    }
    const trades = await taker.getTrades(market);
    assert.equal(trades.length, 3);
    assert.ok(trades.every((t) => t.price === "0.6" && t.size === 1 && t.takerSide === "buy" && t.marketId === market));
    assert.ok(trades[0] && trades[2] && trades[0].createdAt >= trades[2].createdAt); // newest first
    const paged: string[] = [];
    for await (const trade of taker.trades(market, { pageSize: 1 })) {
      paged.push(trade.tradeId);
    }
    assert.deepEqual(
      paged,
      trades.map((t) => t.tradeId),
    );
    assert.deepEqual(
      (await taker.getTrades(market, { limit: 2, pageSize: 1 })).map((t) => t.tradeId),
      paged.slice(0, 2),
    );

    const candles = await taker.getCandles(market, { interval: "1m" });
    assert.ok(candles.length >= 1);
    const last = candles[candles.length - 1];
    assert.ok(last !== undefined && last.start instanceof Date);
    assert.equal(last?.close, "0.6");
    assert.equal(
      candles.reduce((sum, c) => sum + c.volume, 0),
      3,
    );
    const none = await taker.getCandles(market, { interval: "1h", start: new Date(0), end: new Date(1000) });
    assert.deepEqual(none, []);
  });

  test("settlement record, verified", async () => {
    const market = await server.market("index", { tick_size: "0.1", floor: "0", cap: "100" });
    const client = new BallastClient({ baseUrl: server.api });
    const empty = await client.getSettlement(market);
    assert.equal(empty.current, null);
    assert.equal(await empty.verify(), true);
    await server.admin("POST", `/markets/${market}/close`);
    const evidence = { source: "port authority", reading: 52.3, samples: [1, 2.5], note: "é" };
    await server.admin("POST", `/markets/${market}/settlement/propose`, { value: "52.3", evidence });
    const record = await client.getSettlement(market);
    assert.equal(record.status, "resolving");
    assert.equal(record.current?.value, "52.3");
    assert.equal(record.current?.outcome, "proposed");
    assert.deepEqual(record.current?.evidence, {
      source: "port authority",
      reading: "52.3",
      samples: [1, "2.5"],
      note: "é",
    });
    assert.ok(record.current?.disputeEndsAt instanceof Date);
    assert.equal(await record.hashMatches(), true);
    assert.equal(await record.verify(), true);
    const summary = (await client.getMarket(market)).settlement;
    assert.equal(summary?.value, "52.3");
    assert.equal(summary?.evidenceHash, record.current?.evidenceHash);
    assert.equal(summary?.final, false);
    // A tampered record does not verify: a wrong hash, or evidence that is not what was hashed.
    const raw = (await (await fetch(`${server.api}/markets/${market}/settlement`)).json()) as {
      current: Record<string, unknown>;
    };
    const wrongHash = { ...raw, current: { ...raw.current, evidence_hash: "00".repeat(32) } };
    assert.equal(await new SettlementRecord(wrongHash, decodeJson).hashMatches(), false);
    assert.equal(await new SettlementRecord(wrongHash, decodeJson).verify(), false);
    const otherEvidence = { ...raw, current: { ...raw.current, evidence: { ...evidence, reading: 52.4 } } };
    assert.equal(await new SettlementRecord(otherEvidence, decodeJson).hashMatches(), true);
    assert.equal(await new SettlementRecord(otherEvidence, decodeJson).verify(), false);
    assert.equal(await new SettlementRecord(raw, decodeJson).verify(), true);
  });
});

describe("trading", () => {
  test("place, read back, amend, cancel, cancel all", async () => {
    const market = await server.market();
    const { client } = await newClient(server);
    const order = await client.placeOrder({ marketId: market, side: "buy", orderType: "limit", price: 0.42, size: 10 });
    assert.match(order.id, /^ord_/);
    assert.equal(order.orderId, order.id);
    assert.match(order.clientOrderId ?? "", /^ts-[0-9a-f]{32}$/);
    assert.deepEqual(
      [order.marketId, order.side, order.type, order.orderType, order.price, order.size, order.status, order.isOpen],
      [market, "buy", "limit", "limit", "0.42", 10, "open", true],
    );
    assert.deepEqual([order.filledSize, order.remainingSize, order.timeInForce, order.fills], [0, 10, "GTC", []]);
    assert.ok(order.createdAt instanceof Date);
    const read = await client.getOrder(order.id);
    assert.equal(read.clientOrderId, order.clientOrderId);
    const amended = await client.amendOrder(order.id, { price: "0.43", size: 8 });
    assert.deepEqual([amended.price, amended.size, amended.remainingSize], ["0.43", 8, 8]);
    const canceled = await client.cancelOrder(order.id);
    assert.deepEqual([canceled.status, canceled.cancelReason, canceled.isOpen], ["canceled", "user", false]);
    const a = await client.placeOrder({ marketId: market, side: "buy", price: "0.3", size: 1 });
    const b = await client.placeOrder({ marketId: market, side: "sell", price: "0.9", size: 1, postOnly: true });
    const other = await server.market();
    const c = await client.placeOrder({ marketId: other, side: "buy", price: "0.3", size: 1 });
    const some = await client.cancelAll({ marketId: market });
    assert.deepEqual([...some.canceled].sort(), [a.id, b.id].sort());
    assert.equal(some.count, 2);
    const rest = await client.cancelAll();
    assert.deepEqual(rest.canceled, [c.id]);
  });

  test("orders with every option; a client order id is idempotent", async () => {
    const market = await server.market();
    const { client } = await newClient(server);
    const expireAt = new Date(Date.now() + 3_600_000);
    const order = await client.placeOrder({
      marketId: market,
      side: "sell",
      orderType: "limit",
      price: "0.75",
      size: "20",
      timeInForce: "GTD",
      expireAt,
      postOnly: true,
      clientOrderId: "desk-1:quote.42",
      stp: "cancel_both",
    });
    assert.deepEqual(
      [order.timeInForce, order.postOnly, order.stp, order.clientOrderId],
      ["GTD", true, "cancel_both", "desk-1:quote.42"],
    );
    assert.equal(order.expireAt?.getTime(), expireAt.getTime());
    const again = await client.placeOrder({
      marketId: market,
      side: "sell",
      price: "0.75",
      size: 20,
      clientOrderId: "desk-1:quote.42",
      timeInForce: "GTD",
      expireAt,
      postOnly: true,
      stp: "cancel_both",
    });
    assert.equal(again.id, order.id);
    assert.equal((await client.getOrders({ status: "all" })).length, 1);
    // A market order walks the book; reduce-only closes.
    const { client: buyer } = await newClient(server);
    const bought = await buyer.placeOrder({ marketId: market, side: "buy", orderType: "market", size: 5 });
    assert.deepEqual([bought.type, bought.filledSize, bought.status], ["market", 5, "filled"]);
    assert.deepEqual(
      bought.fills.map((f) => [f.price, f.size]),
      [["0.75", 5]],
    );
    assert.ok(decimal.isValid(bought.fills[0]?.fee ?? "x"));
    const closed = await buyer.placeOrder({ marketId: market, side: "sell", price: "0.5", size: 5, reduceOnly: true });
    assert.equal(closed.reduceOnly, true);
  });

  test("batches: each order alone; local refusals are not sent", async () => {
    const market = await server.market("binary", { min_size: 2 });
    const { client } = await newClient(server);
    const results = await client.placeOrders([
      { marketId: market, side: "buy", price: "0.41", size: 3 },
      { marketId: market, side: "buy", price: "0.4105", size: 3 }, // off the grid: refused here
      { marketId: market, side: "buy", price: "0.41", size: 1 }, // below min_size: refused here
      { marketId: "no-such-market", side: "buy", price: "0.41", size: 3 },
      { marketId: market, side: "sell", price: "0.41", size: 3, postOnly: true }, // the server refuses
    ]);
    assert.deepEqual(
      results.map((r) => [r.status, r.ok]),
      [
        [201, true],
        [400, false],
        [400, false],
        [404, false],
        [400, false],
      ],
    );
    assert.ok(results[1]?.error instanceof InvalidPriceError);
    assert.ok(results[2]?.error instanceof OrderSizeTooSmallError);
    assert.ok(results[3]?.error instanceof MarketNotFoundError);
    assert.equal(results[4]?.error?.code, "POST_ONLY_WOULD_CROSS");
    assert.equal((await client.getOrders()).length, 1);
    // Sending the same orders again is a retry: their client order ids answer with the first orders.
    const first = results[0]?.order as Order;
    const retry = await client.placeOrders([
      { marketId: market, side: "buy", price: "0.41", size: 3, clientOrderId: first.clientOrderId ?? "" },
    ]);
    assert.deepEqual([retry[0]?.status, retry[0]?.order?.id], [200, first.id]);
  });

  test("checks before sending give the server's own errors", async () => {
    const market = await server.market("binary", { min_size: 2, max_order_size: 100 });
    const { client } = await newClient(server);
    const { client: unchecked } = await newClient(server, 10_000, { validateOrders: false });
    const bad: [Parameters<BallastClient["placeOrder"]>[0], string][] = [
      [{ marketId: market, side: "buy", price: 0.3 - 0.1, size: 10 }, "INVALID_PRICE"],
      [{ marketId: market, side: "buy", price: "0.4005", size: 10 }, "INVALID_PRICE"],
      [{ marketId: market, side: "buy", price: "1", size: 10 }, "INVALID_PRICE"],
      [{ marketId: market, side: "buy", price: "0", size: 10 }, "INVALID_PRICE"],
      [{ marketId: market, side: "buy", price: "0.5", size: 1 }, "ORDER_SIZE_TOO_SMALL"],
      [{ marketId: market, side: "buy", price: "0.5", size: 101 }, "ORDER_SIZE_TOO_LARGE"],
      [{ marketId: market, side: "buy", size: 10 }, "INVALID_REQUEST"],
    ];
    for (const [params, code] of bad) {
      const local = await client.placeOrder(params).catch((e: unknown) => e);
      const remote = await unchecked.placeOrder(params).catch((e: unknown) => e);
      assert.ok(local instanceof Error && remote instanceof Error, code);
      assert.equal(local.constructor, remote.constructor, code);
      const [l, r] = [local as InvalidRequestError, remote as InvalidRequestError];
      assert.deepEqual([l.code, l.status], [code, 400]);
      assert.deepEqual([r.code, r.status], [code, 400]);
      if (code !== "INVALID_PRICE" || params.price !== "1") {
        assert.equal(l.message, r.message, code);
      }
      assert.equal(l.details.field ?? null, r.details.field ?? null, code);
    }
    assert.equal((await unchecked.getOrders()).length, 0);
    await assert.rejects(
      client.placeOrder({ marketId: market, side: "buy", price: "abc", size: 1 }),
      InvalidRequestError,
    );
  });
});

describe("account", () => {
  test("balance, positions, fills, ledger, orders history", async () => {
    const market = await server.market();
    const { client: maker } = await newClient(server, "1000.5");
    const { client: taker } = await newClient(server, 2000);
    const start = await maker.getBalance();
    assert.deepEqual(
      [start.totalBalance, start.available, start.reserved, start.currency],
      ["1000.5", "1000.5", "0", "USDC"],
    );
    const resting = await maker.placeOrder({ marketId: market, side: "sell", price: "0.7", size: 10 });
    const reserved = await maker.getBalance();
    assert.equal(reserved.reserved, "3");
    assert.equal(decimal.add(reserved.available, reserved.reserved), reserved.totalBalance);
    await taker.placeOrder({ marketId: market, side: "buy", price: "0.7", size: 4 });
    const [position] = await taker.getPositions();
    assert.deepEqual(
      [position?.marketId, position?.size, position?.averagePrice, position?.marginUsed],
      [market, 4, "0.7", "2.8"],
    );
    const [short] = await maker.getPositions();
    assert.equal(short?.size, -4);
    const fills = await maker.getFills();
    assert.equal(fills.length, 1);
    assert.deepEqual(
      [fills[0]?.orderId, fills[0]?.liquidity, fills[0]?.side, fills[0]?.price, fills[0]?.size],
      [resting.id, "maker", "sell", "0.7", 4],
    );
    assert.deepEqual(
      await maker.getFills({ marketId: market, startDate: "2000-01-01", endDate: new Date(Date.now() + 86_400_000) }),
      fills,
    );
    assert.deepEqual(await maker.getFills({ endDate: "2000-01-01" }), []);
    const ledger = await taker.getLedger();
    assert.ok(ledger.length >= 2);
    assert.ok(ledger.some((e) => e.kind === "deposit" && e.amount === "2000"));
    assert.ok(ledger.every((e) => Number.isInteger(e.entryId) && e.createdAt instanceof Date));
    const deposits = await taker.getLedger({ kind: "deposit" });
    assert.ok(deposits.length >= 1 && deposits.every((e) => e.kind === "deposit"));
    const firstTwo: number[] = [];
    for await (const entry of taker.ledger({ pageSize: 1, limit: 2 })) {
      firstTwo.push(entry.entryId);
    }
    assert.deepEqual(
      firstTwo,
      ledger.slice(0, 2).map((e) => e.entryId),
    );

    const open = await maker.getOrders({ status: "open" });
    assert.deepEqual(
      open.map((o) => [o.id, o.filledSize, o.remainingSize]),
      [[resting.id, 4, 6]],
    );
    const all = await taker.getOrders({ status: "all", marketId: market, startDate: new Date(Date.now() - 60_000) });
    assert.equal(all.length, 1);
    assert.equal(all[0]?.status, "filled");
    assert.deepEqual(await taker.getOrders({ status: "open" }), []);
  });

  test("async iteration over many pages", async () => {
    const market = await server.market();
    const { client } = await newClient(server);
    const placed = await client.placeOrders(
      Array.from({ length: 12 }, (_, i) => ({
        marketId: market,
        side: "buy" as const,
        price: decimal.add("0.1", decimal.mul(i, "0.01")),
        size: 1,
      })),
    );
    assert.ok(placed.every((r) => r.ok));
    const seen: string[] = [];
    for await (const order of client.orders({ status: "open", pageSize: 5 })) {
      seen.push(order.id);
    }
    assert.equal(seen.length, 12);
    assert.equal(new Set(seen).size, 12);
    assert.deepEqual(
      seen,
      [...placed].reverse().map((r) => r.order?.id),
    ); // newest first
    const firstFive: string[] = [];
    for await (const order of client.orders({ status: "open", pageSize: 2 })) {
      firstFive.push(order.id);
      if (firstFive.length === 5) {
        break; // leaving early fetches no more pages
      }
    }
    assert.deepEqual(firstFive, seen.slice(0, 5));
    assert.deepEqual(
      (await client.getOrders({ status: "open", limit: 3 })).map((o) => o.id),
      seen.slice(0, 3),
    );
    await assert.rejects(client.orders({ pageSize: 0 }).next(), RangeError);
  });

  test("the sandbox faucet", async () => {
    const { client } = await newClient(server, 0);
    const grant = await client.requestFaucet();
    assert.deepEqual(
      [grant.amount, grant.grantedToday, grant.dailyCap, grant.balance.totalBalance],
      ["10000", "10000", "100000", "10000"],
    );
    const more = await client.requestFaucet({ amount: "5000.25" });
    assert.deepEqual([more.amount, more.grantedToday, more.balance.available], ["5000.25", "15000.25", "15000.25"]);
    assert.equal((await client.getBalance()).totalBalance, "15000.25");
  });

  test("rate-limit headers of the last response", async () => {
    const { client } = await newClient(server);
    const before: unknown = client.rateLimit;
    assert.equal(before, null);
    await client.getBalance();
    const limits = client.rateLimit as RateLimit | null;
    assert.ok(limits !== null);
    assert.equal(limits.limit, 1_000_000_000);
    assert.ok(limits.remaining < limits.limit);
    assert.ok(limits.reset.getTime() > Date.now() - 1000);
  });
});
