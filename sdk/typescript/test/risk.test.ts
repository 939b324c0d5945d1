/** The dead-man switch, batch cancel and amend, and queue position against a real server. */

import assert from "node:assert/strict";
import { before, test } from "node:test";
import { InvalidRequestError, OrderNotCancelableError, OrderNotFoundError } from "@ballast/sdk";
import { sharedServer, type TestServer, waitFor } from "./harness.js";
import { newClient } from "./util.js";

let server: TestServer;

before(async () => {
  server = await sharedServer();
});

test("batch cancel, batch amend and queue position", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  const { client: other } = await newClient(server);
  const ahead = await other.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 30 });
  const first = await client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 10 });
  const second = await client.placeOrder({ marketId: market, side: "buy", price: "0.4", size: 10 });

  const position = await client.getQueuePosition(first.id);
  assert.deepEqual(
    [position.orderId, position.price, position.contractsAhead, position.ordersAhead],
    [first.id, "0.5", 30, 1],
  );

  const amended = await client.amendOrders([
    { orderId: first.id, size: 4 },
    { orderId: second.id, price: "0.45" },
    { orderId: "ord_nope", size: 1 },
  ]);
  assert.deepEqual(
    amended.map((r) => r.status),
    [200, 200, 404],
  );
  assert.equal(amended[0]?.order?.size, 4);
  assert.equal(amended[1]?.order?.price, "0.45");
  assert.ok(amended[2]?.error instanceof OrderNotFoundError);

  const canceled = await client.cancelOrders([first.id, second.id, ahead.id, first.id]);
  assert.deepEqual(
    canceled.map((r) => r.ok),
    [true, true, false, false],
  );
  assert.equal(canceled[0]?.order?.status, "canceled");
  assert.ok(canceled[2]?.error instanceof OrderNotFoundError);
  assert.ok(canceled[3]?.error instanceof OrderNotCancelableError);
  await assert.rejects(client.getQueuePosition(first.id), OrderNotCancelableError);
});

test("a heartbeat arms the dead-man switch; silence cancels the account's orders", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  const order = await client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 10 });
  await assert.rejects(client.heartbeat(2), InvalidRequestError);
  const armed = await client.heartbeat(5);
  assert.equal(armed.armed, true);
  assert.equal(armed.timeoutS, 5);
  assert.ok(armed.deadline instanceof Date && armed.deadline.getTime() <= Date.now() + 6_000);
  const canceled = await waitFor("the switch to fire", async () => {
    const now = await client.getOrder(order.id);
    return now.status === "open" ? undefined : now;
  });
  assert.deepEqual([canceled.status, canceled.cancelReason], ["canceled", "heartbeat_expired"]);
  const off = await client.disarmHeartbeat();
  assert.deepEqual([off.armed, off.timeoutS, off.deadline], [false, 0, null]);
  assert.equal((await client.heartbeat(0)).armed, false);
});

test("the socket feeds the same switch", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  const order = await client.placeOrder({ marketId: market, side: "buy", price: "0.3", size: 5 });
  const stream = await client.stream();
  try {
    const armed = await stream.heartbeat(5);
    assert.deepEqual([armed.armed, armed.timeoutS], [true, 5]);
    const canceled = await waitFor("the switch to fire", async () => {
      const now = await client.getOrder(order.id);
      return now.status === "open" ? undefined : now;
    });
    assert.equal(canceled.cancelReason, "heartbeat_expired");
    assert.equal((await stream.heartbeat(0)).armed, false);
  } finally {
    await stream.close();
  }
});
