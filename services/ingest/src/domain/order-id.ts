import { createHash } from 'node:crypto';
import type { Marketplace } from '@postsale/contracts';

/**
 * Our order id, derived only from (marketplace, the marketplace's order id): every retry, duplicate webhook or
 * per-line-item notification maps to the same id, and the id is also the unique key orders are stored under.
 */
export function orderIdFor(marketplace: Marketplace, externalOrderId: string): string {
  const digest = createHash('sha256').update(`${marketplace}\u0000${externalOrderId}`).digest('hex');
  return `ord_${digest.slice(0, 24)}`;
}
