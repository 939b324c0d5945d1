/** Portfolio history against a server of its own, where a proposal is final at once:
 * settled positions, positions by status, fees and rebates per period. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FeePeriod, SettledPosition } from "@ballast/sdk";
import { NO_LIMITS, TestServer } from "./harness.js";
import { newClient } from "./util.js";

let server: TestServer;

before(async () => {
  server = await TestServer.start({ env: { ...NO_LIMITS, BALLAST_DISPUTE_WINDOW_S: "0" } });
});

after(async () => {
  await server?.dispose();
});

test("a settled position stays in the history; fees per period", async () => {
  const market = await server.market("binary", { taker_fee_bps: 100, maker_fee_bps: -20 });
  const { client: long } = await newClient(server, 1_000);
  const { client: short } = await newClient(server, 1_000);
  await long.placeOrder({ marketId: market, side: "buy", price: "0.6", size: 10 });
  const taken = await short.placeOrder({ marketId: market, side: "sell", price: "0.6", size: 10 });
  assert.equal(taken.filledSize, 10);
  assert.deepEqual(
    (await long.getPositions()).map((p) => [p.marketId, p.status, p.size]),
    [[market, "open", 10]],
  );
  await server.admin("POST", `/markets/${market}/close`);
  await server.admin("POST", `/markets/${market}/settlement/propose`, { value: 1, evidence: { source: "test" } });
  await server.admin("POST", `/markets/${market}/settlement/finalize`);

  const [won] = (await long.getSettlements()) as [SettledPosition];
  assert.equal(won.marketId, market);
  assert.equal(won.finalValue, "1");
  assert.equal(won.size, 10);
  assert.deepEqual([won.costBasis, won.payout, won.settlementPnl, won.realizedPnl], ["6", "10", "4", "4"]);
  assert.ok(won.settledAt instanceof Date);
  const [lost] = (await short.getSettlements({ marketId: market, limit: 1 })) as [SettledPosition];
  assert.deepEqual([lost.size, lost.payout, lost.realizedPnl], [-10, "0", "-4"]);

  assert.deepEqual(await long.getPositions(), []);
  const settled = await long.getPositions({ status: "settled" });
  assert.deepEqual(
    settled.map((p) => [p.status, p.size, p.payout, p.currentPrice]),
    [["settled", 10, "10", "1"]],
  );
  assert.deepEqual(await long.getPositions({ status: "all" }), settled);

  const [day] = (await short.getFees({ startDate: new Date(Date.now() - 86_400_000) })) as [FeePeriod];
  assert.deepEqual([day.feesPaid, day.rebatesEarned, day.feeCount], ["0.06", "0", 1]);
  assert.ok(day.periodEnd.getTime() - day.periodStart.getTime() === 86_400_000);
  const [month] = (await long.getFees({ period: "month" })) as [FeePeriod];
  assert.equal(month.periodStart.getUTCDate(), 1);
  assert.deepEqual([month.rebatesEarned, month.netFees], ["0.012", "-0.012"]);
});
