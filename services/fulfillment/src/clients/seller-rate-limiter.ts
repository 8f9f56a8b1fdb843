/**
 * Per-seller call spacing inside this process: each seller's calls are at least 1/rate seconds apart, so one busy
 * seller cannot burn another's quota or get the app banned. It holds only timestamps keyed by seller, never
 * credentials. (The daily quota is counted in the database, so it holds across processes and restarts.)
 */
export class SellerRateLimiter {
  private readonly nextFreeAt = new Map<string, number>();

  async take(sellerId: string, ratePerSecond: number): Promise<void> {
    const spacing = 1000 / ratePerSecond;
    const now = Date.now();
    const at = Math.max(now, this.nextFreeAt.get(sellerId) ?? 0);
    this.nextFreeAt.set(sellerId, at + spacing);
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}
