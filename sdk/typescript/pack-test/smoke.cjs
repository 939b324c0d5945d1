// The CommonJS twin of smoke.mjs: the same calls through require().
const { BallastClient, decimal, InsufficientBalanceError, VERSION } = require("@ballast/sdk");

async function main() {
  const client = new BallastClient(); // key, secret and URL from the environment
  const market = process.env.BALLAST_MARKET;
  const markets = await client.getMarkets();
  const order = await client.placeOrder({ marketId: market, side: "buy", orderType: "limit", price: "0.62", size: 10 });
  const stream = await client.stream();
  const book = await stream.orderBook(market, 5);
  await stream.ping();
  let refused = null;
  try {
    await client.placeOrder({ marketId: market, side: "buy", price: "0.5", size: 1_000_000 });
  } catch (error) {
    refused = error instanceof InsufficientBalanceError ? error.code : String(error);
  }
  await stream.close();
  console.log(
    JSON.stringify({
      module: "cjs",
      version: VERSION,
      listed: markets.some((m) => m.id === market),
      order: order.id,
      price: order.price,
      bestBid: book.bestBid,
      sum: decimal.add("0.1", "0.2"),
      refused,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
