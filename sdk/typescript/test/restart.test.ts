/** A stream survives a server restart on the same port: it reconnects, authenticates again (a new
 * welcome, a new nonce), resubscribes, and every subscription resyncs from a fresh snapshot. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { StreamMessage } from "@ballast/sdk";
import { TestServer } from "./harness.js";
import { assertBookMatchesRest, newClient, readUntil } from "./util.js";

let server: TestServer;

before(async () => {
  server = await TestServer.start();
});

after(async () => {
  await server?.dispose();
});

test("the stream reconnects after a restart and resyncs its subscriptions", async () => {
  const market = await server.market();
  const { client, account } = await newClient(server, 10_000);
  const { client: other } = await newClient(server, 10_000);
  await other.placeOrder({ marketId: market, side: "sell", price: "0.7", size: 5 });
  const stream = await client.stream({ backoffBaseMs: 100, backoffMaxMs: 1000 });
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
