/** The stream's own server: it survives a restart on the same port (reconnects, authenticates
 * again with a new welcome nonce, resubscribes, resyncs every subscription from a fresh
 * snapshot); heartbeats; a feed gone silent. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type StreamMessage, TooManyConnectionsError, UnauthorizedError } from "@ballast/sdk";
import { TestServer } from "./harness.js";
import { assertBookMatchesRest, newClient, readUntil } from "./util.js";

let server: TestServer;

before(async () => {
  // Heartbeats every half second (the default is 5 s), so the tests about them are quick.
  server = await TestServer.start({ env: { BALLAST_STREAM_HEARTBEAT_S: "0.5" } });
});

after(async () => {
  await server?.dispose();
});

test("the stream reconnects after a restart and resyncs its subscriptions", async () => {
  const market = await server.market();
  const { client, account } = await newClient(server, 10_000);
  const { client: other } = await newClient(server, 10_000);
  await other.placeOrder({ marketId: market, side: "sell", price: "0.7", size: 5 });
  const stream = await client.stream({ backoffBaseMs: 100, backoffMaxMs: 1000, heartbeatIntervalMs: 500 });
  const events: StreamMessage["type"][] = [];
  stream.on("disconnected", (m) => events.push(m.type));
  stream.on("connected", (m) => events.push(m.type));
  stream.on("resynced", (m) => events.push(m.type));
  try {
    const book = await stream.orderBook(market, 10);
    await stream.subscribe("orders");
    await client.placeOrder({ marketId: market, side: "buy", price: "0.4", size: 2 });
    await assertBookMatchesRest(stream, client, market, 10, true);
    stream.drain();

    await server.restart();

    const seen = await readUntil(
      stream,
      (m) => m.type === "resynced" && stream.subscriptions.every((s) => s.synced),
      60_000,
    );
    const disconnected = seen.find((m) => m.type === "disconnected");
    assert.ok(disconnected?.type === "disconnected" && disconnected.reconnecting && disconnected.error === null);
    const connected = seen.find((m) => m.type === "connected");
    assert.ok(connected?.type === "connected" && connected.reconnect && connected.accountId === account.account_id);
    const resynced = seen.filter((m) => m.type === "resynced");
    for (const m of resynced) {
      assert.ok(m.type === "resynced" && m.reason === "reconnect");
    }
    // Each subscription's fresh snapshot came right before its resynced event.
    const index = seen.findIndex((m) => m.type === "resynced");
    const before = seen[index - 1];
    assert.ok(before !== undefined && "channel" in before && before.type === "snapshot");
    assert.deepEqual(events.slice(0, 2), ["disconnected", "connected"]);
    assert.ok(stream.reconnects >= 1);
    assert.ok(book.synced);
    await assertBookMatchesRest(stream, client, market, 10, true);

    // Trading goes on, over the socket and over REST, and the book follows.
    const order = await stream.placeOrder({ marketId: market, side: "buy", price: "0.45", size: 3 });
    await other.placeOrder({ marketId: market, side: "sell", price: "0.4", size: 1 });
    await readUntil(
      stream,
      (m) => m.type === "update" && m.channel === "orders" && m.orders.some((o) => o.id === order.id),
    );
    await assertBookMatchesRest(stream, client, market, 10, true);
    assert.equal(book.bestBid, "0.45");
  } finally {
    await stream.close();
  }
});

test("heartbeats: iterated on request, naming each subscription's last seq, and advancing the books", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  const stream = await client.stream({ heartbeats: true, heartbeatIntervalMs: 500 });
  try {
    const book = await stream.orderBook(market, 5);
    await client.placeOrder({ marketId: market, side: "buy", price: "0.3", size: 1 });
    await readUntil(stream, (m) => m.type === "update" && m.channel === "orderbook");
    const before = book.exchangeSeq ?? 0;
    const elsewhere = await server.market();
    await client.placeOrder({ marketId: elsewhere, side: "buy", price: "0.3", size: 1 });
    const seen = await readUntil(stream, (m) => m.type === "heartbeat" && m.exchangeSeq > before, 10_000);
    const beat = seen[seen.length - 1];
    assert.ok(beat?.type === "heartbeat");
    assert.deepEqual(
      beat.subscriptions.map((s) => [s.channel, s.marketId, s.seq]),
      [["orderbook", market, book.seq]],
    );
    // Another market moved the exchange on; this book is known to hold at the heartbeat's seq.
    assert.equal(book.exchangeSeq, beat.exchangeSeq);
  } finally {
    await stream.close();
  }
});

test("a feed gone silent is dropped and reconnected", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  // The client expects a heartbeat every 100 ms: the server's half second is silence to it.
  const stream = await client.stream({ heartbeatIntervalMs: 100, backoffBaseMs: 50, backoffMaxMs: 200 });
  try {
    await stream.orderBook(market, 5);
    const seen = await readUntil(stream, (m) => m.type === "resynced", 20_000);
    const dropped = seen.find((m) => m.type === "disconnected");
    assert.ok(dropped?.type === "disconnected");
    assert.equal(dropped.code, null);
    assert.match(dropped.reason, /dead feed/);
    assert.ok(dropped.reconnecting);
    assert.ok(seen.some((m) => m.type === "connected" && m.reconnect));
    const resynced = seen[seen.length - 1];
    assert.ok(resynced?.type === "resynced" && resynced.reason === "reconnect");
  } finally {
    await stream.close();
  }
});

test("a revoked key ends the stream with UnauthorizedError, without reconnecting", async () => {
  const { client, account } = await newClient(server);
  const stream = await client.stream({ heartbeatIntervalMs: 500 });
  try {
    await stream.subscribe("orders");
    await server.admin("POST", `/keys/${account.api_key}/revoke`);
    const seen: StreamMessage[] = [];
    const error = await (async () => {
      for await (const message of stream) {
        seen.push(message);
      }
      return null;
    })().catch((e: unknown) => e);
    assert.ok(error instanceof UnauthorizedError, String(error));
    const last = seen[seen.length - 1];
    assert.ok(last?.type === "disconnected");
    assert.deepEqual([last.code, last.reconnecting, last.error], [4001, false, error]);
    assert.equal(stream.closed, true);
    assert.equal(stream.reconnects, 0);
    await assert.rejects(stream.ping(), UnauthorizedError);
  } finally {
    await stream.close();
  }
});

test("a sixth connection of one key is refused with TooManyConnectionsError", async () => {
  const { client } = await newClient(server);
  const streams = [];
  try {
    for (let i = 0; i < 5; i += 1) {
      streams.push(await client.stream());
    }
    await assert.rejects(client.stream(), TooManyConnectionsError);
    await streams.pop()?.close();
    streams.push(await client.stream()); // a place is free again
  } finally {
    await Promise.all(streams.map((s) => s.close()));
  }
});
