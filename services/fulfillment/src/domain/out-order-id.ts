import { createHash } from 'node:crypto';

/**
 * AliExpress's idempotency key for our purchase, derived from the order id alone so that every process, restart and
 * replay computes the same one (lessons 6, 7). Hashed to a fixed, short, alphanumeric form the web checkout's memo
 * field also accepts.
 */
export function outOrderIdFor(orderId: string): string {
  return `PS${createHash('sha256').update(`postsale:fulfillment:${orderId}`).digest('hex').slice(0, 30).toUpperCase()}`;
}
