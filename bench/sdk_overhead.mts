/**
 * The TypeScript SDK's overhead: time per call through `BallastClient` against a raw signed
 * `fetch` (node:crypto HMAC, `JSON.parse`) on the same server, in the same run, interleaved in
 * blocks so that drift in the machine's load hits both alike.
 *
 *   cd sdk/typescript && npm ci && npm run bench            # starts its own `ballast serve`
 *   npm run bench -- --calls 4000 --block 100 --depth 20
 *
 * It prints one JSON object per call kind (and a summary), machine-readable. Target: the SDK's
 * median within 10 % of the raw median.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BallastClient } from "@ballast/sdk";

const { values: args } = parseArgs({
  options: {
    calls: { type: "string", default: "3000" },
    block: { type: "string", default: "100" },
    depth: { type: "string", default: "20" },
    warmup: { type: "string", default: "300" },
  },
});
const CALLS = Number(args.calls);
const BLOCK = Number(args.block);
const DEPTH = Number(args.depth);
const WARMUP = Number(args.warmup);

// build/bench/sdk_overhead.mjs in sdk/typescript → the repository root.
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

async function startServer(): Promise<{ url: string; dataDir: string; child: ChildProcess }> {
  const bin = join(REPO, ".venv", "bin", "ballast");
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run make test (or make run) once`);
  }
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "ballast-bench-"));
  const child = spawn(bin, ["serve", "--port", String(port), "--data-dir", dataDir, "--no-demo"], {
    env: { ...process.env, BALLAST_PUBLIC_RATE_LIMIT: "1000000000", BALLAST_PRIVATE_RATE_LIMIT: "1000000000" },
    stdio: "ignore",
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`ballast serve exited with ${child.exitCode}`);
    }
    try {
      const response = await fetch(`${url}/readyz`);
      await response.text();
      if (response.status === 200) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error("the server did not get ready");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, dataDir, child };
}

async function admin(url: string, token: string, path: string, body: unknown): Promise<Record<string, string>> {
  const response = await fetch(`${url}/v1/admin${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.status >= 300) {
    throw new Error(`${path}: ${response.status} ${await response.text()}`);
  }
  return (await response.json()) as Record<string, string>;
}

/** A signed request as a developer would write it with nothing but fetch and node:crypto. */
function rawCall(
  api: string,
  key: string,
  secret: string,
  method: string,
  path: string,
  last: { ts: number },
  body?: unknown,
): Promise<Record<string, unknown>> {
  const timestamp = Math.max(Date.now(), last.ts + 1); // replay protection: never the same twice
  last.ts = timestamp;
  const signed = new URL(api + path);
  const content = body === undefined ? "" : JSON.stringify(body);
  const signature = createHmac("sha256", secret)
    .update(`${timestamp}${method}${signed.pathname}${signed.search}${content}`)
    .digest("hex");
  const headers: Record<string, string> = {
    Authorization: `Bearer ${key}`,
    "X-BM-Timestamp": String(timestamp),
    "X-BM-Signature": signature,
  };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  return fetch(signed.href, { method, headers, body: body === undefined ? undefined : content }).then(
    async (response) => {
      const text = await response.text();
      if (response.status >= 300) {
        throw new Error(`${response.status} ${text}`);
      }
      return JSON.parse(text) as Record<string, unknown>;
    },
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function measure(
  name: string,
  raw: () => Promise<unknown>,
  sdk: () => Promise<unknown>,
  calls = CALLS,
): Promise<Record<string, number | string>> {
  for (let i = 0; i < Math.min(WARMUP, calls); i += 1) {
    await raw();
    await sdk();
  }
  const times = { raw: [] as number[], sdk: [] as number[] };
  for (let done = 0, round = 0; done < calls; done += BLOCK, round += 1) {
    // Alternate which goes first, so neither always runs on a warmer machine.
    const order: ("raw" | "sdk")[] = round % 2 === 0 ? ["raw", "sdk"] : ["sdk", "raw"];
    for (const kind of order) {
      const call = kind === "raw" ? raw : sdk;
      for (let i = 0; i < BLOCK; i += 1) {
        const started = performance.now();
        await call();
        times[kind].push(performance.now() - started);
      }
    }
  }
  const rawMedian = median(times.raw);
  const sdkMedian = median(times.sdk);
  const rawMean = times.raw.reduce((a, b) => a + b, 0) / times.raw.length;
  const sdkMean = times.sdk.reduce((a, b) => a + b, 0) / times.sdk.length;
  return {
    call: name,
    calls: times.sdk.length,
    raw_median_ms: Number(rawMedian.toFixed(3)),
    sdk_median_ms: Number(sdkMedian.toFixed(3)),
    raw_p90_ms: Number(quantile(times.raw, 0.9).toFixed(3)),
    sdk_p90_ms: Number(quantile(times.sdk, 0.9).toFixed(3)),
    raw_mean_ms: Number(rawMean.toFixed(3)),
    sdk_mean_ms: Number(sdkMean.toFixed(3)),
    overhead_median_pct: Number((((sdkMedian - rawMedian) / rawMedian) * 100).toFixed(1)),
    overhead_mean_pct: Number((((sdkMean - rawMean) / rawMean) * 100).toFixed(1)),
  };
}

const server = await startServer();
try {
  const token = readFileSync(join(server.dataDir, "admin.token"), "utf8").trim();
  const account = await admin(server.url, token, "/accounts", { name: "bench", deposit: 1_000_000 });
  // The raw baseline signs with a key of its own: two signers on one key could pick the same
  // millisecond for the same request, which the server refuses as a replay.
  const rawKey = await admin(server.url, token, "/keys", { account_id: account.account_id, scopes: ["read", "trade"] });
  const maker = await admin(server.url, token, "/accounts", { name: "bench-maker", deposit: 1_000_000 });
  const market = "bench-book";
  await admin(server.url, token, "/markets", {
    id: market,
    name: market,
    type: "binary",
    close_time: 4_102_444_800_000,
  });
  await admin(server.url, token, `/markets/${market}/open`, {});
  const api = `${server.url}/v1`;
  const makerClient = new BallastClient({ apiKey: maker.api_key, apiSecret: maker.api_secret, baseUrl: api });
  // A full book: DEPTH levels a side, so the book call carries real JSON to decode.
  await makerClient.placeOrders(
    Array.from({ length: Math.min(DEPTH, 20) }, (_, i) => ({
      marketId: market,
      side: "buy" as const,
      price: (0.3 + i * 0.001).toFixed(3),
      size: 10 + i,
    })),
  );
  await makerClient.placeOrders(
    Array.from({ length: Math.min(DEPTH, 20) }, (_, i) => ({
      marketId: market,
      side: "sell" as const,
      price: (0.7 - i * 0.001).toFixed(3),
      size: 10 + i,
    })),
  );
  const client = new BallastClient({ apiKey: account.api_key, apiSecret: account.api_secret, baseUrl: api });
  const key = rawKey.api_key as string;
  const secret = rawKey.api_secret as string;
  const last = { ts: 0 };
  const results = [
    await measure(
      "GET /account/balance (signed)",
      () => rawCall(api, key, secret, "GET", "/account/balance", last),
      () => client.getBalance(),
    ),
    await measure(
      `GET /markets/{id}/orderbook?depth=${DEPTH} (signed, ${2 * Math.min(DEPTH, 20)} levels)`,
      () => rawCall(api, key, secret, "GET", `/markets/${market}/orderbook?depth=${DEPTH}`, last),
      () => client.getOrderbook(market, { depth: DEPTH }),
    ),
    await measure(
      "POST /orders + DELETE /orders/{id} (a resting order placed and canceled)",
      async () => {
        const placed = await rawCall(api, key, secret, "POST", "/orders", last, {
          market_id: market,
          side: "buy",
          type: "limit",
          price: "0.2",
          size: 1,
        });
        return rawCall(api, key, secret, "DELETE", `/orders/${placed.order_id}`, last);
      },
      async () => {
        const placed = await client.placeOrder({
          marketId: market,
          side: "buy",
          orderType: "limit",
          price: "0.2",
          size: 1,
        });
        return client.cancelOrder(placed.id);
      },
      Math.max(BLOCK, Math.floor(CALLS / 4)),
    ),
  ];
  for (const result of results) {
    console.log(JSON.stringify(result));
  }
  const worst = Math.max(...results.map((r) => Number(r.overhead_median_pct)));
  console.log(
    JSON.stringify({
      summary: "sdk_overhead",
      node: process.version,
      calls_each: CALLS,
      worst_overhead_median_pct: worst,
      target_pct: 10,
      within_target: worst <= 10,
    }),
  );
} finally {
  server.child.kill("SIGTERM");
  await new Promise((r) => server.child.once("exit", r));
  rmSync(server.dataDir, { recursive: true, force: true });
}
