import { createBatcher, type Logger, type Metrics } from '@postsale/runtime';
import type { AckStore, StoreOptions, StoreResult } from '../domain/ports';
import type { NewDelivery } from '../domain/records';
import type { DeliveriesRepository } from './deliveries.repository';

type Ack = { delivery: NewDelivery; claimMs: number; options: StoreOptions };

/**
 * The webhooks' store with group commit: deliveries arriving together are stored by one `storeMany` statement (one
 * round trip and one commit for all of them; issue 15), each caller answered with its own outcome once that statement
 * committed. A batch that fails is stored again one delivery at a time (`storeNew`), so a delivery the database refuses
 * fails only its own request. Dedupe holds across replicas as before: the unique index decides, in either statement.
 */
export function createAckStore(repo: DeliveriesRepository, options: { maxBatch: number; maxInFlight: number; lingerMs: number; logger: Logger; metrics: Metrics }): AckStore {
  const batcher = createBatcher<Ack, StoreResult>({
    name: 'ingest.acks', maxBatch: options.maxBatch, maxInFlight: options.maxInFlight, lingerMs: options.lingerMs,
    run: (acks) => repo.storeMany(acks),
    runOne: (ack) => repo.storeNew(ack.delivery, ack.claimMs, ack.options),
    logger: options.logger, metrics: options.metrics,
  });
  return {
    storeNew: (delivery, claimMs, storeOptions = {}) => batcher.submit({ delivery, claimMs, options: storeOptions }),
    insertIgnored: (delivery, reason, storeOptions = {}) => batcher.submit({ delivery, claimMs: 0, options: { ...storeOptions, ignored: reason } }),
    countDropped: (marketplace, reason) => repo.countDropped(marketplace, reason),
  };
}
