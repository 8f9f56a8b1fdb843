import type { Kafka } from 'kafkajs';
import { EventCodec, Streams, type PipelineEvent } from '@postsale/contracts';
import { readTopicToEnd } from '../kafka-tools';
import type { StageReport, Violation } from './integrity';

/** How long an order may wait at each hand-off between services before the report names it. */
export interface HandoffDeadlines {
  /** OrderReceived → PurchaseCompleted / PurchaseFailed / OrderCancelled (fulfillment's turn) */
  purchaseSeconds: number;
  /** PurchaseCompleted → SaleRecorded (sales' turn) */
  saleSeconds: number;
}

export const DEFAULT_HANDOFF_DEADLINES: HandoffDeadlines = { purchaseSeconds: 3600, saleSeconds: 900 };

interface Timeline {
  sellerId: string;
  received?: number;
  purchaseSettled?: number; // completed, failed, or cancelled before purchase
  purchased?: number;
  saleSettled?: number;
}

/**
 * Every order's stage, derived from the event streams themselves: the public record every service writes to. It names
 * an order stuck between two services even when the service whose turn it is cannot answer. (What happens inside a
 * service — holds, retries, reviews — is that service's own /admin/integrity report.)
 */
export async function streamIntegrity(
  kafka: Kafka,
  codec: EventCodec,
  deadlines: HandoffDeadlines = DEFAULT_HANDOFF_DEADLINES,
  now = Date.now(),
): Promise<StageReport[]> {
  const timelines = new Map<string, Timeline>();
  const at = (orderId: string, sellerId: string) => {
    let t = timelines.get(orderId);
    if (!t) timelines.set(orderId, (t = { sellerId }));
    return t;
  };
  for (const stream of [Streams.orders, Streams.fulfillment, Streams.sales]) {
    for (const message of await readTopicToEnd(kafka, codec.topic(stream))) {
      if (!message.value) continue;
      let event: PipelineEvent;
      try {
        event = await codec.decode<PipelineEvent>(message.value);
      } catch {
        continue; // undecodable messages are the DLQ's business
      }
      const t = at(event.orderId, event.sellerId);
      const when = event.occurredAt;
      switch (event.type) {
        case 'OrderReceived': t.received ??= when; break;
        case 'OrderCancelled': t.purchaseSettled ??= when; t.saleSettled ??= when; break;
        case 'PurchaseFailed': t.purchaseSettled ??= when; t.saleSettled ??= when; break;
        case 'PurchaseCompleted': t.purchaseSettled ??= when; t.purchased ??= when; break;
        case 'SaleRecorded': t.saleSettled ??= when; break;
        default: break;
      }
    }
  }
  const awaitingPurchase: Violation[] = [];
  const awaitingSale: Violation[] = [];
  for (const [orderId, t] of timelines) {
    const late = (since: number, deadlineSeconds: number, state: string, reason: string): Violation | undefined => {
      const ageSeconds = (now - since) / 1000;
      return ageSeconds > deadlineSeconds
        ? { orderId, sellerId: t.sellerId, state, since: new Date(since).toISOString(), ageSeconds, deadlineSeconds, reason }
        : undefined;
    };
    if (t.received !== undefined && t.purchaseSettled === undefined) {
      const v = late(t.received, deadlines.purchaseSeconds, 'RECEIVED', 'no purchase outcome on the fulfillment stream');
      if (v) awaitingPurchase.push(v);
    }
    if (t.purchased !== undefined && t.saleSettled === undefined) {
      const v = late(t.purchased, deadlines.saleSeconds, 'PURCHASED', 'purchase completed but no sale on the sales stream');
      if (v) awaitingSale.push(v);
    }
  }
  return [
    { service: 'streams', stage: 'hand-off: received → purchase (fulfillment)', violations: awaitingPurchase },
    { service: 'streams', stage: 'hand-off: purchased → sale (sales)', violations: awaitingSale },
  ];
}
