/** Order groups through the client and the stream against a real server. */

import assert from "node:assert/strict";
import { before, test } from "node:test";
import {
  type ChannelMessage,
  InvalidRequestError,
  OrderGroupNotFoundError,
  OrderGroupTriggeredError,
} from "@ballast/sdk";
import { sharedServer, type TestServer } from "./harness.js";
import { newClient, readUntil } from "./util.js";

let server: TestServer;

before(async () => {
  server = await sharedServer();
});

test("a group triggers on its fills, refuses orders, resets and is deleted", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  const { client: street } = await newClient(server);
  const group = await client.createOrderGroup({ maxFilledSize: 8, windowS: 120 });
  assert.deepEqual(
    [group.status, group.triggered, group.maxFilledSize, group.windowS, group.filledInWindow],
    ["active", false, 8, 120, 0],
  );
  assert.ok(group.id.startsWith("grp_") && group.id === group.orderGroupId);
  assert.equal((await client.createOrderGroup({ maxFilledSize: 3 })).windowS, 15);
  await assert.rejects(client.createOrderGroup({ maxFilledSize: 0 }), InvalidRequestError);

  const first = await client.placeOrder({
    marketId: market,
    side: "sell",
    price: "0.6",
    size: 5,
    orderGroupId: group.id,
  });
  const second = await client.placeOrder({
    marketId: market,
    side: "sell",
    price: "0.61",
    size: 5,
    orderGroupId: group.id,
  });
  assert.equal(first.orderGroupId, group.id);
  await street.placeOrder({ marketId: market, side: "buy", price: "0.61", size: 9 }); // 9 of 8
  const shown = await client.getOrderGroup(group.id);
  assert.deepEqual([shown.triggered, shown.filledInWindow, shown.openOrders], [true, 9, 0]);
  assert.ok(shown.triggeredAt instanceof Date);
  const canceled = await client.getOrder(second.id);
  assert.deepEqual([canceled.status, canceled.cancelReason, canceled.filledSize], ["canceled", "order_group_limit", 4]);

  const refused = { marketId: market, side: "sell", price: "0.7", size: 1, orderGroupId: group.id } as const;
  await assert.rejects(client.placeOrder(refused), (error: unknown) => {
    assert.ok(error instanceof OrderGroupTriggeredError);
    assert.deepEqual([error.status, error.details.order_group_id], [409, group.id]);
    return true;
  });
  const batch = await client.placeOrders([refused]);
  assert.ok(batch[0]?.error instanceof OrderGroupTriggeredError);
  await assert.rejects(client.placeOrder({ ...refused, orderGroupId: "grp_nope" }), OrderGroupNotFoundError);
  await assert.rejects(street.getOrderGroup(group.id), OrderGroupNotFoundError);

  const again = await client.resetOrderGroup(group.id);
  assert.deepEqual([again.status, again.filledInWindow, again.resetAt instanceof Date], ["active", 0, true]);
  const kept = await client.placeOrder(refused);
  assert.equal((await client.getOrderGroups())[0]?.id, group.id);
  const deleted = await client.deleteOrderGroup(group.id);
  assert.deepEqual(
    [deleted.orderGroupId, deleted.deleted, deleted.canceled, deleted.count],
    [group.id, true, [kept.id], 1],
  );
  assert.equal((await client.getOrder(kept.id)).cancelReason, "user");
  await assert.rejects(client.getOrderGroup(group.id), OrderGroupNotFoundError);
  await client.cancelAll();
  await street.cancelAll();
});

test("the stream manages groups and announces a trigger", async () => {
  const market = await server.market();
  const { client } = await newClient(server);
  const { client: other } = await newClient(server);
  const stream = await client.stream();
  try {
    const snapshot = await stream.subscribe("order_groups");
    assert.ok(snapshot.channel === "order_groups" && snapshot.orderGroups.length === 0);
    await stream.subscribe("orders");
    const group = await stream.createOrderGroup({ maxFilledSize: 4, windowS: 30 });
    assert.deepEqual(
      (await stream.getOrderGroups()).map((g) => g.id),
      [group.id],
    );
    const order = await stream.placeOrder({
      marketId: market,
      side: "buy",
      price: "0.4",
      size: 10,
      orderGroupId: group.id,
    });
    await other.placeOrder({ marketId: market, side: "sell", price: "0.4", size: 4 });
    const seen = await readUntil(
      stream,
      (m) =>
        m.type === "update" && m.channel === "orders" && m.orders.some((o) => o.cancelReason === "order_group_limit"),
    );
    const notices = seen.filter(
      (m): m is ChannelMessage => "channel" in m && m.channel === "order_groups" && m.type === "update",
    );
    assert.equal(notices.length, 1);
    const notice = notices[0];
    assert.ok(notice?.channel === "order_groups");
    const [triggered] = notice.orderGroups;
    assert.deepEqual(
      [triggered?.id, triggered?.event, triggered?.triggered, triggered?.filledInWindow],
      [group.id, "triggered", true, 4],
    );
    assert.equal((await stream.getOrderGroup(group.id)).triggered, true);
    assert.equal((await client.getOrder(order.id)).status, "canceled");
    await assert.rejects(
      stream.placeOrder({ marketId: market, side: "buy", price: "0.3", size: 1, orderGroupId: group.id }),
      OrderGroupTriggeredError,
    );
    assert.equal((await stream.resetOrderGroup(group.id)).status, "active");
    assert.deepEqual((await stream.deleteOrderGroup(group.id)).canceled, []);
    await assert.rejects(stream.deleteOrderGroup(group.id), OrderGroupNotFoundError);
  } finally {
    await stream.close();
  }
});
