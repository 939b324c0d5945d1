// Type-checked against the installed package's ESM declarations (never run).
import { type BallastClient, type DecimalString, type Order, RateLimitError } from "@ballast/sdk";

export async function quote(client: BallastClient, marketId: string): Promise<DecimalString | null> {
  const order: Order = await client.placeOrder({ marketId, side: "buy", orderType: "limit", price: "0.5", size: 1 });
  for await (const open of client.orders({ status: "open" })) {
    open.createdAt?.getTime();
  }
  try {
    await client.cancelOrder(order.id);
  } catch (error) {
    if (error instanceof RateLimitError) {
      return String(error.retryAfter);
    }
  }
  return order.price;
}
