/** Small helpers shared by the tests. */

import { BallastClient, type BallastClientOptions } from "@ballast/sdk";
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
