/** Small helpers shared by the tests. */

import assert from "node:assert/strict";
import { BallastClient, type BallastClientOptions, type Stream, type StreamMessage } from "@ballast/sdk";
import type { Account, TestServer } from "./harness.js";

/** A client on a new funded account of `server` (`accountId` and the raw account alongside). */
export async function newClient(
  server: TestServer,
  deposit: number | string = 10_000,
  options: BallastClientOptions = {},
): Promise<{ client: BallastClient; account: Account }> {
  const account = await server.account(deposit);
  const client = new BallastClient({
    apiKey: account.api_key,
    apiSecret: account.api_secret,
    baseUrl: server.api,
    ...options,
  });
  return { client, account };
}

/** Levels as [price, size] pairs, for comparing books. */
export function levels(book: {
  bids: readonly { price: string; size: number }[];
  asks: readonly { price: string; size: number }[];
}): [string, number][][] {
  return [book.bids.map((l) => [l.price, l.size]), book.asks.map((l) => [l.price, l.size])];
}

/** A seeded pseudo-random generator (mulberry32), so a failing order flow can be replayed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A signed request by hand, as the spec's snippet makes it (for what the client never sends). */
export async function rawRequest(
  api: string,
  account: { api_key: string; api_secret: string } | null,
  method: string,
  path: string,
  options: { body?: string; contentType?: string; timestamp?: number } = {},
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const { sign } = await import("@ballast/sdk");
  const url = new URL(api + path);
  const headers: Record<string, string> = {};
  if (options.body !== undefined) {
    headers["Content-Type"] = options.contentType ?? "application/json";
  }
  if (account !== null) {
    const timestamp = String(options.timestamp ?? Date.now());
    headers.Authorization = `Bearer ${account.api_key}`;
    headers["X-BM-Timestamp"] = timestamp;
    headers["X-BM-Signature"] = await sign(
      account.api_secret,
      timestamp,
      method,
      url.pathname + url.search,
      options.body ?? "",
    );
  }
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) {
    init.body = options.body;
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, json, headers: response.headers };
}

/** Every message read up to and including the first that matches (fails after `timeoutMs`). */
export async function readUntil(
  stream: Stream,
  predicate: (message: StreamMessage) => boolean,
  timeoutMs = 15_000,
): Promise<StreamMessage[]> {
  const seen: StreamMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) {
      const last = seen.slice(-5).map((m) => ("channel" in m ? `${m.type}:${m.channel}` : m.type));
      throw new Error(`no match within ${timeoutMs} ms; read ${seen.length}: …${last.join(", ")}`);
    }
    const message = await stream.receive(left);
    if (message === null) {
      continue;
    }
    seen.push(message);
    if (predicate(message)) {
      return seen;
    }
  }
}

/**
 * Once caught up (a pong after the last write), the stream's book is REST's book. On a server
 * nobody else uses (`quiet`), REST's `seq` is the pong's too.
 */
export async function assertBookMatchesRest(
  stream: Stream,
  rest: BallastClient,
  marketId: string,
  depth: number,
  quiet = false,
): Promise<void> {
  const pong = await stream.ping();
  const shown = await rest.getOrderbook(marketId, { depth });
  const book = stream.book(marketId);
  assert.ok(book.synced);
  assert.deepEqual(levels(book), levels(shown));
  assert.deepEqual(
    [book.bestBid, book.bestAsk, book.spread, book.mid],
    [shown.bestBid, shown.bestAsk, shown.spread, shown.mid],
  );
  assert.equal(book.exchangeSeq, pong.exchangeSeq);
  assert.ok(pong.exchangeSeq <= (shown.seq ?? 0));
  if (quiet) {
    assert.equal(pong.exchangeSeq, shown.seq);
    assert.deepEqual(levels(book.toOrderBook()), levels(shown));
    assert.equal(book.toOrderBook().seq, shown.seq);
  }
}
