/** The market object's convenience reads and market discovery against the shared server. */

import assert from "node:assert/strict";
import { before, test } from "node:test";
import { BallastClient } from "@ballast/sdk";
import { sharedServer, type TestServer, unique } from "./harness.js";
import { newClient } from "./util.js";

let server: TestServer;

before(async () => {
  server = await sharedServer();
});

test("midpoint, last price and 24 h change on the market", async () => {
  const market = await server.market();
  const { client: maker } = await newClient(server);
  const { client: taker } = await newClient(server);
  await maker.placeOrder({ marketId: market, side: "buy", price: "0.4", size: 5 });
  await maker.placeOrder({ marketId: market, side: "sell", price: "0.61", size: 5 });
  const client = new BallastClient({ baseUrl: server.api });
  const quoted = await client.getMarket(market);
  assert.deepEqual([quoted.bid, quoted.ask, quoted.midpoint], ["0.4", "0.61", "0.505"]);
  assert.deepEqual([quoted.lastPrice, quoted.change24h], [null, null]);
  await taker.placeOrder({ marketId: market, side: "sell", price: "0.4", size: 5 });
  const listed = (await client.getMarkets()).find((m) => m.id === market);
  assert.deepEqual([listed?.lastPrice, listed?.midpoint, listed?.change24h], ["0.4", null, null]);
});

test("discovery: filters, series and events", async () => {
  const seriesId = unique("series");
  const eventId = unique("event");
  const series = { id: seriesId, title: "Suez Canal weekly availability" };
  const event = { id: eventId, title: "Chokepoints - Week 49" };
  const first = await server.market("binary", { category: "Chokepoints", tags: ["suez", seriesId], series, event });
  const second = await server.market("binary", { tags: [seriesId], series, question: "Open all week?" });
  const client = new BallastClient({ baseUrl: server.api });
  const [market, ...rest] = await client.getMarkets({ tag: seriesId, category: "chokepoints" });
  assert.equal(rest.length, 0);
  assert.equal(market?.id, first);
  assert.deepEqual([market?.category, market?.tags], ["Chokepoints", ["suez", seriesId]]);
  assert.deepEqual(market?.series, series);
  assert.deepEqual(market?.event, event);
  assert.deepEqual(
    (await client.getMarkets({ series: seriesId })).map((m) => m.id),
    [first, second],
  );
  assert.deepEqual(
    (await client.getMarkets({ tag: seriesId, q: "OPEN ALL" })).map((m) => m.id),
    [second],
  );
  assert.deepEqual(await client.getMarkets({ tag: seriesId, closeBefore: new Date(0) }), []);
  assert.equal((await client.getMarkets({ tag: seriesId, closeAfter: "2000-01-01", status: "open" })).length, 2);
  const listed = (await client.getSeries()).find((s) => s.id === seriesId);
  assert.deepEqual([listed?.title, listed?.marketIds], [series.title, [first, second]]);
  const grouped = (await client.getEvents()).find((e) => e.id === eventId);
  assert.deepEqual(grouped?.marketIds, [first]);
});
