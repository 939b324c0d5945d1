/** The market object's convenience reads and market discovery against the shared server. */

import assert from "node:assert/strict";
import { before, test } from "node:test";
import { BallastClient } from "@ballast/sdk";
import { sharedServer, type TestServer } from "./harness.js";
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
