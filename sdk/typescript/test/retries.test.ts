/** Safe retries against real servers: 429 with Retry-After on a server with a tiny limit, clock
 * skew, lost responses, unreachable servers, and replay protection (fresh timestamps). */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  BallastClient,
  type BallastClientOptions,
  type FetchInit,
  type FetchLike,
  InvalidSignatureError,
  NetworkError,
  RateLimitError,
} from "@ballast/sdk";
import { type Account, freePort, freshWindow, sharedServer, TestServer } from "./harness.js";
import { newClient, rawRequest } from "./util.js";

const TIGHT_LIMIT = 3;
let server: TestServer;
let tight: TestServer;

before(async () => {
  server = await sharedServer();
  tight = await TestServer.start({
    env: { BALLAST_PRIVATE_RATE_LIMIT: String(TIGHT_LIMIT), BALLAST_PUBLIC_RATE_LIMIT: "1000000" },
  });
});

after(async () => {
  await tight?.dispose();
});

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** The global fetch, recording what is sent; `lose(sent)` true loses that response after the server acted. */
function recordingFetch(sent: Sent[], lose: (request: Sent) => boolean = () => false): FetchLike {
  return async (url: string, init: FetchInit) => {
    const request = { method: init.method, path: new URL(url).pathname, headers: { ...init.headers }, body: init.body };
    sent.push(request);
    const response = await fetch(url, init);
    if (lose(request)) {
      await response.text();
      throw new TypeError("fetch failed", {
        cause: Object.assign(new Error("the response was lost"), { code: "ECONNRESET" }),
      });
    }
    return response;
  };
}

function clientOf(account: Account, target: TestServer, options: BallastClientOptions = {}): BallastClient {
  return new BallastClient({ apiKey: account.api_key, apiSecret: account.api_secret, baseUrl: target.api, ...options });
}

async function exhaust(client: BallastClient): Promise<void> {
  for (let expected = TIGHT_LIMIT - 1; expected >= 0; expected -= 1) {
    await client.getBalance();
    assert.deepEqual([client.rateLimit?.limit, client.rateLimit?.remaining], [TIGHT_LIMIT, expected]);
  }
}

test("429: RateLimitError with Retry-After, at once when retries are off", async () => {
  const account = await tight.account(1000);
  await freshWindow();
  const client = clientOf(account, tight, { maxRetries: 0 });
  await exhaust(client);
  const started = Date.now();
  const error = await client.getPositions().then(
    () => assert.fail("no 429"),
    (e: unknown) => e,
  );
  assert.ok(Date.now() - started < 1000);
  assert.ok(error instanceof RateLimitError);
  assert.deepEqual([error.code, error.status], ["RATE_LIMIT_EXCEEDED", 429]);
  assert.equal(client.rateLimit?.remaining, 0);
  const left = ((client.rateLimit?.reset.getTime() ?? 0) - Date.now()) / 1000;
  assert.ok(error.retryAfter !== null && error.retryAfter >= 1 && error.retryAfter <= 60);
  assert.ok(Math.abs(error.retryAfter - Math.ceil(left)) <= 1, `${error.retryAfter} vs ${left}`);
});

test("429 longer than maxRetryWaitMs fails fast", async () => {
  const account = await tight.account(1000);
  await freshWindow();
  const client = clientOf(account, tight, { maxRetries: 5, maxRetryWaitMs: 500 }); // Retry-After is >= 1 s
  await exhaust(client);
  const started = Date.now();
  await assert.rejects(client.getBalance(), RateLimitError);
  assert.ok(Date.now() - started < 1000);
});

/**
 * Records the waits the client asks for. Instead of sleeping out the rest of the minute, it lifts
 * the key's limit on the real server (as the window's end would) and returns, so the retry that
 * follows runs against the server at once.
 */
class RecordingClient extends BallastClient {
  readonly waits: [number, number][] = []; // (asked ms, ms left in the window)

  protected override async sleep(ms: number): Promise<void> {
    this.waits.push([ms, (this.rateLimit?.reset.getTime() ?? 0) - Date.now()]);
    await tight.admin("POST", `/keys/${this.apiKey}/tier`, { tier: "100" });
  }
}

test("429 waits as Retry-After says, then succeeds", async () => {
  const account = await tight.account(1000);
  await freshWindow();
  const client = new RecordingClient({
    apiKey: account.api_key,
    apiSecret: account.api_secret,
    baseUrl: tight.api,
    maxRetries: 2,
  });
  await exhaust(client);
  const balance = await client.getBalance(); // 429, wait, retry: 200
  assert.equal(balance.totalBalance, "1000");
  assert.equal(client.waits.length, 1);
  const [[asked, left]] = client.waits as [[number, number]];
  // The whole Retry-After (the rest of the window, rounded up to a second), plus jitter.
  assert.ok(asked >= 1000, String(asked));
  assert.ok(
    asked >= Math.ceil(left / 1000) * 1000 - 1000 && asked <= Math.ceil(left / 1000) * 1000 + 1250,
    `${asked} ${left}`,
  );
  assert.equal(client.rateLimit?.limit, 100);
});

test("clock skew is corrected once, and signing goes on", async () => {
  const market = await server.market();
  const sent: Sent[] = [];
  const { client } = await newClient(server, 10_000, { fetch: recordingFetch(sent) });
  for (const skew of [-120_000, 300_000]) {
    client.clockOffsetMs = skew; // as if the local clock were 2 min slow, then 5 min fast
    sent.length = 0;
    assert.equal((await client.getBalance()).currency, "USDC");
    assert.ok(Math.abs(client.clockOffsetMs) < 2000, String(client.clockOffsetMs));
    assert.deepEqual(
      sent.map((r) => r.path),
      ["/v1/account/balance", "/v1/time", "/v1/account/balance"],
    );
  }
  client.clockOffsetMs = -60_000;
  const order = await client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 1 });
  assert.equal((await client.getOrder(order.id)).status, "open");
});

test("an order whose response was lost is placed once", async () => {
  const market = await server.market();
  const account = await server.account();
  const sent: Sent[] = [];
  let lose = 2;
  const client = clientOf(account, server, {
    fetch: recordingFetch(sent, (r) => r.method === "POST" && lose-- > 0),
  });
  const order = await client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 3 });
  assert.equal(lose, -1); // two responses lost, the third arrived
  const posts = sent.filter((r) => r.method === "POST");
  assert.equal(posts.length, 3);
  assert.equal(new Set(posts.map((r) => r.body)).size, 1); // the same body, the same client order id
  assert.equal(new Set(posts.map((r) => r.headers["X-BM-Timestamp"])).size, 3); // each re-signed
  const orders = await client.getOrders({ status: "all" });
  assert.deepEqual(
    orders.map((o) => o.id),
    [order.id],
  );
});

test("unsafe calls are not retried", async () => {
  const market = await server.market();
  const account = await server.account();
  const sent: Sent[] = [];
  const client = clientOf(account, server, { fetch: recordingFetch(sent, (r) => r.method === "PATCH") });
  const order = await client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 3 });
  const error = await client.amendOrder(order.id, { size: 2 }).then(
    () => assert.fail("no error"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof NetworkError);
  assert.deepEqual([error.code, error.status], ["NETWORK_ERROR", null]);
  assert.equal(sent.filter((r) => r.method === "PATCH").length, 1);
  assert.equal((await client.getOrder(order.id)).size, 2); // the server did act, once
});

test("an unreachable server: reads retried with backoff, then NetworkError", async () => {
  const port = await freePort(); // nothing listens here
  const sent: Sent[] = [];
  const client = new BallastClient({
    baseUrl: `http://127.0.0.1:${port}/v1`,
    maxRetries: 2,
    fetch: recordingFetch(sent),
  });
  const started = Date.now();
  await assert.rejects(client.getMarkets(), NetworkError);
  assert.equal(sent.length, 3);
  assert.ok(Date.now() - started >= 0.5 * (250 + 500) - 50);
});

test("timestamps never repeat, even for requests sent at once", async () => {
  const sent: Sent[] = [];
  const { client } = await newClient(server, 10_000, { fetch: recordingFetch(sent) });
  const results = await Promise.all(Array.from({ length: 40 }, () => client.getBalance()));
  assert.equal(results.length, 40);
  const stamps = sent.map((r) => Number(r.headers["X-BM-Timestamp"]));
  assert.equal(new Set(stamps).size, 40);
  for (let i = 1; i < stamps.length; i += 1) {
    assert.ok((stamps[i] as number) > (stamps[i - 1] as number), "strictly increasing in sending order");
  }
  // A clock set back a little does not reuse a timestamp either.
  const last = stamps[stamps.length - 1] as number;
  client.clockOffsetMs -= 5000;
  await client.getBalance();
  assert.equal(Number(sent[sent.length - 1]?.headers["X-BM-Timestamp"]), last + 1);
});

test("replay protection: a signature seen before is refused, and the client re-signs once", async () => {
  const account = await server.account();
  // A request sent twice as is (same timestamp, same signature): the server refuses the second.
  const sent: Sent[] = [];
  const first = clientOf(account, server, { fetch: recordingFetch(sent) });
  await first.getBalance();
  const original = sent[0] as Sent;
  const replay = await fetch(`${server.api}/account/balance`, { headers: original.headers });
  const body = (await replay.json()) as { error: { code: string; details: { reason?: string } } };
  assert.equal(replay.status, 401);
  assert.deepEqual([body.error.code, body.error.details.reason], ["INVALID_SIGNATURE", "replayed"]);

  // Another process with the same key happens to sign the same request in the same millisecond:
  // the first attempt collides, and the client signs again with a fresh timestamp.
  let collide = true;
  const seen: Sent[] = [];
  const second = clientOf(account, server, {
    fetch: async (url, init) => {
      if (collide) {
        collide = false;
        init.headers["X-BM-Timestamp"] = original.headers["X-BM-Timestamp"] as string;
        init.headers["X-BM-Signature"] = original.headers["X-BM-Signature"] as string;
      }
      return recordingFetch(seen)(url, init);
    },
  });
  assert.equal((await second.getBalance()).currency, "USDC");
  assert.equal(seen.length, 2);
  assert.notEqual(seen[1]?.headers["X-BM-Timestamp"], original.headers["X-BM-Timestamp"]);

  // Only once: a client whose every attempt collides gets the error.
  const stubborn = clientOf(account, server, {
    fetch: async (url, init) => {
      init.headers["X-BM-Timestamp"] = original.headers["X-BM-Timestamp"] as string;
      init.headers["X-BM-Signature"] = original.headers["X-BM-Signature"] as string;
      return fetch(url, init);
    },
  });
  const error = await stubborn.getBalance().then(
    () => assert.fail("no error"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof InvalidSignatureError);
  assert.equal(error.details.reason, "replayed");

  // By hand: a fresh timestamp is a fresh signature, accepted.
  const fresh = await rawRequest(server.api, account, "GET", "/account/balance");
  assert.equal(fresh.status, 200);
});
