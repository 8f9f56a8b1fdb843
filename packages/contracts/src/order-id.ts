import { createHash } from 'node:crypto';
import type { Marketplace } from './types.generated';

/**
 * Our order id, derived only from (marketplace, the marketplace's order id): every retry, duplicate webhook or
 * per-line-item notification maps to the same id, and the id is also the unique key orders are stored under.
 * It lives in the contracts because every topic is keyed by it and tools outside ingest look orders up by it.
 */
export function orderIdFor(marketplace: Marketplace, externalOrderId: string): string {
  const digest = createHash('sha256').update(`${marketplace}\u0000${externalOrderId}`).digest('hex');
  return `ord_${digest.slice(0, 24)}`;
}
