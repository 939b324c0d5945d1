// Type-checked against the installed package's CommonJS declarations (never run).
import sdk = require("@ballast/sdk");

export async function best(client: sdk.BallastClient, marketId: string): Promise<sdk.DecimalString | null> {
  const stream: sdk.Stream = await client.stream();
  const book: sdk.LocalOrderBook = await stream.orderBook(marketId);
  await stream.close();
  return book.bestBid;
}
