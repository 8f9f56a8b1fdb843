import { randomUUID } from 'node:crypto';
import type { TypedEvent } from './codec';
import type { StreamDefinition } from './topics';

/** The payload of the event of type T in union E. */
export type PayloadOf<E extends TypedEvent, T extends E['type']> = Extract<E, { type: T }>['payload'];

export interface EventMeta {
  orderId: string;
  sellerId: string;
  /** the event or delivery this one answers; null when nothing outside caused it */
  causationId?: string | null;
  /** epoch ms; now by default (use cases with a clock pass theirs) */
  occurredAt?: number;
}

/**
 * The one way to build an event: the stream fixes the union, the type picks the payload's shape, and the envelope
 * (a fresh event id, the time) is filled in here — so no call site needs a cast.
 */
export function newEvent<E extends TypedEvent, T extends E['type']>(
  _stream: StreamDefinition<E>,
  type: T,
  payload: PayloadOf<E, T>,
  meta: EventMeta,
): Extract<E, { type: T }> {
  const event = {
    eventId: randomUUID(),
    orderId: meta.orderId,
    sellerId: meta.sellerId,
    occurredAt: meta.occurredAt ?? Date.now(),
    causationId: meta.causationId ?? null,
    type,
    payload,
  };
  return event as unknown as Extract<E, { type: T }>;
}
