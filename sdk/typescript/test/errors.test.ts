/** Each server error code maps to its class: from the real server wherever it can be provoked. */

import assert from "node:assert/strict";
import { before, test } from "node:test";
import {
  AccountNotFoundError,
  AuthenticationError,
  BallastClient,
  BallastError,
  ConflictError,
  DuplicateClientOrderIdError,
  decimal,
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
  OrderGroupNotFoundError,
  OrderGroupTriggeredError,
  OrderNotCancelableError,
  OrderNotFoundError,
  OrderRejectedError,
  OrderSizeTooLargeError,
  OrderSizeTooSmallError,
  type OrderStatus,
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
} from "@ballast/sdk";
import { freePort, sharedServer, type TestServer } from "./harness.js";
import { newClient, rawRequest } from "./util.js";

let server: TestServer;

before(async () => {
  server = await sharedServer();
});

type Class = abstract new (...args: never[]) => BallastError;

const TABLE: [string, number, Class, Class[]][] = [
  ["INVALID_REQUEST", 400, InvalidRequestError, []],
  ["INVALID_PRICE", 400, InvalidPriceError, [OrderRejectedError]],
  ["INSUFFICIENT_BALANCE", 400, InsufficientBalanceError, [OrderRejectedError]],
  ["ORDER_SIZE_TOO_SMALL", 400, OrderSizeTooSmallError, [OrderRejectedError]],
  ["ORDER_SIZE_TOO_LARGE", 400, OrderSizeTooLargeError, [OrderRejectedError]],
  ["POSITION_LIMIT_EXCEEDED", 400, PositionLimitExceededError, [OrderRejectedError]],
  ["POST_ONLY_WOULD_CROSS", 400, PostOnlyWouldCrossError, [OrderRejectedError]],
  ["REDUCE_ONLY_WOULD_INCREASE", 400, ReduceOnlyWouldIncreaseError, [OrderRejectedError]],
  ["UNAUTHORIZED", 401, UnauthorizedError, [AuthenticationError]],
  ["INVALID_SIGNATURE", 401, InvalidSignatureError, [AuthenticationError]],
  ["TIMESTAMP_EXPIRED", 401, TimestampExpiredError, [AuthenticationError]],
  ["FORBIDDEN", 403, ForbiddenError, []],
  ["MARKET_NOT_FOUND", 404, MarketNotFoundError, [NotFoundError]],
  ["ORDER_NOT_FOUND", 404, OrderNotFoundError, [NotFoundError]],
  ["ORDER_GROUP_NOT_FOUND", 404, OrderGroupNotFoundError, [NotFoundError]],
  ["NOT_FOUND", 404, NotFoundError, []],
  ["ACCOUNT_NOT_FOUND", 404, AccountNotFoundError, [NotFoundError]],
  ["KEY_NOT_FOUND", 404, KeyNotFoundError, [NotFoundError]],
  ["METHOD_NOT_ALLOWED", 405, MethodNotAllowedError, []],
  ["MARKET_CLOSED", 409, MarketClosedError, [ConflictError]],
  ["ORDER_NOT_CANCELABLE", 409, OrderNotCancelableError, [ConflictError]],
  ["DUPLICATE_CLIENT_ORDER_ID", 409, DuplicateClientOrderIdError, [ConflictError]],
  ["ORDER_GROUP_TRIGGERED", 409, OrderGroupTriggeredError, [ConflictError]],
  ["INVALID_TRANSITION", 409, InvalidTransitionError, [ConflictError]],
  ["MARKET_EXISTS", 409, MarketExistsError, [ConflictError]],
  ["PAYLOAD_TOO_LARGE", 413, PayloadTooLargeError, []],
  ["UNSUPPORTED_MEDIA_TYPE", 415, UnsupportedMediaTypeError, []],
  ["INVALID_SETTLEMENT", 400, InvalidSettlementError, []],
  ["RATE_LIMIT_EXCEEDED", 429, RateLimitError, []],
  ["FAUCET_LIMIT_EXCEEDED", 429, FaucetLimitError, [RateLimitError]],
  ["TOO_MANY_CONNECTIONS", 429, TooManyConnectionsError, []],
  ["INTERNAL_ERROR", 500, InternalServerError, [ServerError]],
  ["SERVICE_UNAVAILABLE", 503, ServiceUnavailableError, [ServerError]],
];

test("every code of docs/api.md has its class, with its family", () => {
  for (const [code, status, cls, bases] of TABLE) {
    assert.equal(errorClass(code), cls, code);
    const error = errorFromBody(status, { error: { code, message: `m ${code}`, details: { a: "1.5" } } }, 7);
    assert.ok(error instanceof cls && error instanceof BallastError && error instanceof Error, code);
    for (const base of bases) {
      assert.ok(error instanceof base, `${code} is a ${base.name}`);
    }
    assert.deepEqual(
      [error.code, error.status, error.message, error.details],
      [code, status, `m ${code}`, { a: "1.5" }],
    );
    assert.equal(error.name, cls.name);
    assert.ok(String(error).includes(code));
  }
  const unknown = errorFromBody(418, { error: { code: "BRAND_NEW_CODE", message: "new", details: {} } });
  assert.equal(unknown.constructor, BallastError);
  assert.equal(unknown.code, "BRAND_NEW_CODE");
  const proxy = errorFromBody(502, "<html>bad gateway</html>");
  assert.ok(proxy instanceof ServerError);
  assert.equal(proxy.code, "HTTP_502");
  const limited = errorFromBody(429, null, 12);
  assert.ok(limited instanceof RateLimitError && limited.retryAfter === 12);
  assert.equal(new NetworkError("x").code, "NETWORK_ERROR");
  assert.equal(new InvalidResponseError("x").code, "INVALID_RESPONSE");
});

async function caught(promise: Promise<unknown>): Promise<BallastError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BallastError, String(error));
    return error;
  }
  assert.fail("no error");
}

test("order rejections from the server", async () => {
  const market = await server.market("binary", { min_size: 2, max_order_size: 500, max_position: 50 });
  const { client } = await newClient(server, 10, { validateOrders: false });
  const cases: [Parameters<BallastClient["placeOrder"]>[0], Class, string][] = [
    [{ marketId: market, side: "buy", price: "0.5001", size: 2 }, InvalidPriceError, "INVALID_PRICE"],
    [{ marketId: market, side: "buy", price: "0.5", size: 1 }, OrderSizeTooSmallError, "ORDER_SIZE_TOO_SMALL"],
    [{ marketId: market, side: "buy", price: "0.5", size: 501 }, OrderSizeTooLargeError, "ORDER_SIZE_TOO_LARGE"],
    [{ marketId: market, side: "buy", price: "0.5", size: 51 }, PositionLimitExceededError, "POSITION_LIMIT_EXCEEDED"],
    [{ marketId: market, side: "buy", price: "0.5", size: 40 }, InsufficientBalanceError, "INSUFFICIENT_BALANCE"],
    [
      { marketId: market, side: "sell", price: "0.5", size: 2, reduceOnly: true },
      ReduceOnlyWouldIncreaseError,
      "REDUCE_ONLY_WOULD_INCREASE",
    ],
    [{ marketId: "no-such-market", side: "buy", price: "0.5", size: 2 }, MarketNotFoundError, "MARKET_NOT_FOUND"],
  ];
  for (const [params, cls, code] of cases) {
    const error = await caught(client.placeOrder(params));
    assert.ok(error instanceof cls, `${code}: got ${String(error)}`);
    assert.equal(error.code, code);
  }
  const poor = await caught(client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 40 }));
  // Decimal strings in USDC, with the server's digits.
  assert.ok(decimal.eq(String(poor.details.required), "20") && decimal.eq(String(poor.details.available), "10"));
  const { client: maker } = await newClient(server);
  await maker.placeOrder({ marketId: market, side: "sell", price: "0.6", size: 2 });
  const cross = await caught(
    client.placeOrder({ marketId: market, side: "buy", price: "0.6", size: 2, postOnly: true }),
  );
  assert.ok(cross instanceof PostOnlyWouldCrossError);
  const bad = await caught(client.getOrders({ status: "bogus" as OrderStatus }));
  assert.ok(bad instanceof InvalidRequestError);
  assert.equal(bad.details.field, "status");
});

test("authentication, scopes, missing things and conflicts", async () => {
  const market = await server.market();
  const { client, account } = await newClient(server);
  const stranger = new BallastClient({ apiKey: "bmkt_test_nobody", apiSecret: "bmkt_secret_x", baseUrl: server.api });
  assert.ok((await caught(stranger.getBalance())) instanceof UnauthorizedError);
  const forger = new BallastClient({ apiKey: account.api_key, apiSecret: "bmkt_secret_wrong", baseUrl: server.api });
  const forged = await caught(forger.getBalance());
  assert.ok(forged instanceof InvalidSignatureError && forged.status === 401);
  assert.ok(!JSON.stringify(forged.details).includes(account.api_secret));
  const old = await rawRequest(server.api, account, "GET", "/account/balance", { timestamp: Date.now() - 120_000 });
  assert.ok(errorFromBody(old.status, old.json) instanceof TimestampExpiredError);
  const readOnly = await server.key(account.account_id, ["read"]);
  const reader = new BallastClient({ apiKey: readOnly.api_key, apiSecret: readOnly.api_secret, baseUrl: server.api });
  assert.ok(
    (await caught(reader.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 1 }))) instanceof
      ForbiddenError,
  );
  assert.equal((await reader.getBalance()).currency, "USDC");

  assert.ok((await caught(client.getOrder("ord_999999999"))) instanceof OrderNotFoundError);
  const lost = new BallastClient({ baseUrl: `${server.url}/nowhere/v1` });
  const missing = await caught(lost.getMarkets());
  assert.ok(missing instanceof NotFoundError && missing.code === "NOT_FOUND");
  const put = await rawRequest(server.api, account, "PUT", "/orders", { body: "{}" });
  assert.ok(errorFromBody(put.status, put.json) instanceof MethodNotAllowedError);

  // The same client order id sent six times at once: one order; the others answer with it, or
  // (when they raced the first one's commit) DUPLICATE_CLIENT_ORDER_ID.
  const outcomes = await Promise.allSettled(
    Array.from({ length: 6 }, () =>
      client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 1, clientOrderId: "race-1" }),
    ),
  );
  const placed = new Set<string>();
  for (const outcome of outcomes) {
    if (outcome.status === "fulfilled") {
      placed.add(outcome.value.id);
    } else {
      assert.ok(outcome.reason instanceof DuplicateClientOrderIdError, String(outcome.reason));
    }
  }
  assert.equal(placed.size, 1);
  const [orderId] = placed;
  const order = await client.getOrder(orderId as string);
  assert.equal((await client.getOrders({ status: "all" })).length, 1);
  await client.cancelOrder(order.id);
  assert.ok((await caught(client.cancelOrder(order.id))) instanceof OrderNotCancelableError);
  await server.admin("POST", `/markets/${market}/halt`);
  assert.ok(
    (await caught(client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 1 }))) instanceof
      MarketClosedError,
  );
});

test("operator errors come back in the same envelope", async () => {
  const market = await server.market();
  const admin = { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/json" };
  const again = await fetch(`${server.api}/admin/markets/${market}/open`, {
    method: "POST",
    headers: admin,
    body: "{}",
  });
  assert.ok(errorFromBody(again.status, await again.json()) instanceof InvalidTransitionError);
  await fetch(`${server.api}/admin/markets/${market}/close`, { method: "POST", headers: admin, body: "{}" });
  const half = await fetch(`${server.api}/admin/markets/${market}/settlement/propose`, {
    method: "POST",
    headers: admin,
    body: JSON.stringify({ value: "0.5", evidence: { x: 1 } }),
  });
  assert.ok(errorFromBody(half.status, await half.json()) instanceof InvalidSettlementError);
});

test("transport-level refusals", async () => {
  const { account } = await newClient(server);
  const big = await rawRequest(server.api, account, "POST", "/orders", {
    body: JSON.stringify({ pad: "x".repeat(70_000) }),
  });
  assert.ok(errorFromBody(big.status, big.json) instanceof PayloadTooLargeError);
  const text = await rawRequest(server.api, account, "POST", "/orders", { body: "hello", contentType: "text/plain" });
  assert.ok(errorFromBody(text.status, text.json) instanceof UnsupportedMediaTypeError);
});

test("the faucet's daily cap is not waited out", async () => {
  const { client } = await newClient(server, 0);
  const started = Date.now();
  const error = await caught(client.requestFaucet({ amount: "100001" }));
  assert.ok(Date.now() - started < 5000);
  assert.ok(error instanceof FaucetLimitError && error instanceof RateLimitError);
  assert.equal(error.status, 429);
  assert.ok(error.resetsAt instanceof Date && error.resetsAt.getTime() > Date.now());
  assert.ok(typeof error.retryAfter === "number" && error.retryAfter > 0);
});

test("no server: NetworkError, no status", async () => {
  const port = await freePort(); // nothing listens here
  const client = new BallastClient({ baseUrl: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  const error = await caught(client.getMarkets());
  assert.ok(error instanceof NetworkError);
  assert.deepEqual([error.code, error.status], ["NETWORK_ERROR", null]);
  assert.equal(error.details.exception, "ECONNREFUSED");
});
