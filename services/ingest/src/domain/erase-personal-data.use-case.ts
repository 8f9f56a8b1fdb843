import { createHash } from 'node:crypto';
import { newEvent, Streams } from '@postsale/contracts';
import type { Logger, Metrics, OutboxWriter, Tx } from '@postsale/runtime';
import type { ErasedOrder, ErasureCause, ErasureRepository } from '../db/erasure.repository';

/** The data subjects' keys (crypto-shredding of personal data in Kafka): see db/subject-keys.repository.ts. */
export interface SubjectKeys {
  subjectsOfOrders(trx: Tx, orderIds: string[]): Promise<string[]>;
  ordersOfSubjects(trx: Tx, subjectIds: string[]): Promise<string[]>;
  withoutPersonalData(trx: Tx, subjectIds: string[]): Promise<string[]>;
  shred(trx: Tx, subjectIds: string[]): Promise<number>;
}

/**
 * One erasure path for every cause: eBay's MARKETPLACE_ACCOUNT_DELETION, an admin's request for one order, and the
 * retention period. Each run is one transaction and leaves an `erasures` row that names no person (subjects are
 * hashed). Idempotent: erasing again changes nothing.
 */
export function createErasure(deps: { repo: ErasureRepository; subjects: SubjectKeys; outbox: OutboxWriter; logger: Logger; metrics: Metrics }) {
  const erased = deps.metrics.counter('ingest_personal_data_erasures_total', 'Orders whose buyer personal data was erased, by cause', ['cause']);
  const subjectHash = (marketplace: string, id: string) => createHash('sha256').update(`${marketplace}:${id}`).digest('hex');

  /** Every service erases its own copies when it reads OrderPersonalDataErased (same transaction as ours: outbox). */
  async function announce(trx: Tx, orders: ErasedOrder[], cause: ErasureCause): Promise<void> {
    for (const o of orders) {
      const event = newEvent(Streams.orders, 'OrderPersonalDataErased', { marketplace: o.marketplace, externalOrderId: o.externalOrderId, cause, erasedAt: Date.now() }, {
        orderId: o.orderId, sellerId: o.sellerId,
      });
      await deps.repo.addEvent(trx, { orderId: o.orderId, eventId: event.eventId, cause: `personal data erased (${cause})` });
      await deps.outbox.publish(trx, Streams.orders, event);
    }
  }

  /**
   * Kafka keeps history: the orders' events carry their buyer's data sealed under the subject's key, so deleting the
   * key erases every copy (topic, dead letters, replays). A buyer's erasure takes the whole subject, so every order of
   * that buyer is erased too (its events are unreadable from now on). Retention shreds a subject only once none of
   * its orders holds personal data any more.
   */
  async function eraseWithSubjects(trx: Tx, orderIds: string[], cause: ErasureCause) {
    const subjects = await deps.subjects.subjectsOfOrders(trx, orderIds);
    const all = cause === 'RETENTION' ? orderIds : [...new Set([...orderIds, ...(await deps.subjects.ordersOfSubjects(trx, subjects))])];
    const result = await deps.repo.eraseOrders(trx, all);
    await announce(trx, result.erased, cause);
    await deps.subjects.shred(trx, cause === 'RETENTION' ? await deps.subjects.withoutPersonalData(trx, subjects) : subjects);
    return result;
  }

  return {
    /** eBay user deleted: as a buyer, their orders' personal data; as one of our sellers, their account and raw deliveries. */
    async eraseEbayUser(input: { username: string; userId: string }): Promise<{ orders: number; deliveries: number; accountRemoved: boolean }> {
      const result = await deps.repo.transaction(async (trx) => {
        const orderIds = await deps.repo.ebayOrdersOfBuyer(trx, input.username);
        const asBuyer = await eraseWithSubjects(trx, orderIds, 'EBAY_ACCOUNT_DELETION');
        const asSeller = await deps.repo.eraseAccount(trx, 'EBAY', input.username);
        const totals = { orders: asBuyer.orders, deliveries: asBuyer.deliveries + asSeller.deliveries, accountRemoved: asSeller.accountRemoved };
        await deps.repo.record(trx, { cause: 'EBAY_ACCOUNT_DELETION', subjectHash: subjectHash('EBAY', input.userId), ...totals, requestedBy: 'ebay' });
        return totals;
      });
      erased.inc({ cause: 'EBAY_ACCOUNT_DELETION' }, result.orders);
      deps.logger.info({ orders: result.orders, deliveries: result.deliveries, accountRemoved: result.accountRemoved }, 'eBay account deletion honoured');
      return result;
    },

    async eraseOrder(input: { orderId: string; requestedBy: string; reason: string }): Promise<{ orders: number; deliveries: number }> {
      const result = await deps.repo.transaction(async (trx) => {
        const { erased: _orders, ...counts } = await eraseWithSubjects(trx, [input.orderId], 'ADMIN');
        await deps.repo.record(trx, { cause: 'ADMIN', orderId: input.orderId, ...counts, requestedBy: input.requestedBy, reason: input.reason });
        return counts;
      });
      erased.inc({ cause: 'ADMIN' }, result.orders);
      return result;
    },

    /** Orders received more than `days` ago lose their personal data; raw deliveries older than `deliveryDays` go. */
    async applyRetention(input: { days: number; deliveryDays: number; batch: number }): Promise<{ orders: number; deliveriesDeleted: number }> {
      const orderIds = await deps.repo.ordersPastRetention(input.days, input.batch);
      let orders = 0;
      if (orderIds.length > 0) {
        orders = await deps.repo.transaction(async (trx) => {
          const { erased: _done, ...counts } = await eraseWithSubjects(trx, orderIds, 'RETENTION');
          await deps.repo.record(trx, { cause: 'RETENTION', ...counts, requestedBy: 'retention', reason: `received more than ${input.days} days ago` });
          return counts.orders;
        });
        erased.inc({ cause: 'RETENTION' }, orders);
      }
      const deliveriesDeleted = await deps.repo.deleteDecidedDeliveriesOlderThan(input.deliveryDays, input.batch * 10);
      return { orders, deliveriesDeleted };
    },
  };
}
export type Erasure = ReturnType<typeof createErasure>;
