import { AppError, notFound } from '@postsale/runtime';
import type { Marketplace } from '@postsale/contracts';
import type { Erasure } from './erase-personal-data.use-case';
import type { AuditLog, DeliveryStore, ErasureStore, OrderStore } from './ports';
import type { SellerAccountInput, SellersUseCase } from './sellers.use-case';
import type { DeliveryStatus } from './records';

/**
 * What the admin routes do, as use cases: every write and every reveal of personal data leaves an audit row (actor
 * from the credential, never from the body); reads go through the queries here, never to a store directly.
 */
export function createAdmin(deps: {
  sellers: SellersUseCase;
  deliveries: DeliveryStore;
  orders: OrderStore;
  erasure: Erasure;
  erasures: ErasureStore;
  audit: AuditLog;
  nudgeWorker: () => void;
}) {
  return {
    /** Registers or replaces a seller; the audit row holds before/after views (account ids, whether a secret is held). */
    async putSeller(actor: string, reason: string | null, sellerId: string, displayName: string | null, accounts: SellerAccountInput[]) {
      const before = (await deps.sellers.get(sellerId)) ?? null;
      const { requeued } = await deps.sellers.put(sellerId, displayName, accounts);
      const after = await deps.sellers.get(sellerId);
      await deps.audit.record({ actor, action: 'PUT_SELLER', target: sellerId, before, after, reason });
      return { ...after, requeuedDeliveries: requeued };
    },

    async seller(sellerId: string) {
      const seller = await deps.sellers.get(sellerId);
      if (!seller) throw notFound('SELLER_NOT_FOUND', 'no such seller');
      return seller;
    },

    /** A parked delivery is queued again (after the seller registered, or a fix). */
    async reprocess(actor: string, reason: string | null, id: string): Promise<void> {
      const d = await deps.deliveries.get(id);
      if (!d) throw notFound('DELIVERY_NOT_FOUND', 'no such delivery');
      if (!(await deps.deliveries.requeue(id))) throw new AppError('DELIVERY_NOT_PARKED', `only parked deliveries can be reprocessed (this one is ${d.status})`, { status: 409 });
      await deps.audit.record({ actor, action: 'REPROCESS_DELIVERY', target: `delivery:${id}`, orderId: d.orderId, before: { status: d.status, reason: d.reason }, after: { status: 'pending' }, reason });
      deps.nudgeWorker();
    },

    /** Erases the buyer's personal data of one order (any marketplace): the same path as eBay account deletion and retention. */
    async eraseOrder(actor: string, reason: string, orderId: string) {
      if (!(await deps.orders.get(orderId))) throw notFound('ORDER_NOT_FOUND', 'ingest has no such order');
      const erased = await deps.erasure.eraseOrder({ orderId, requestedBy: actor, reason });
      await deps.audit.record({ actor, action: 'ERASE_PERSONAL_DATA', target: orderId, orderId, before: { personalData: 'held' }, after: { personalData: 'erased', ...erased }, reason });
      return erased;
    },

    /** Records that a person was shown personal data, and why (the caller checked a reason was given). */
    recordReveal(actor: string, reason: string, target: string, orderId: string | null): Promise<void> {
      return deps.audit.record({ actor, action: 'REVEAL_PERSONAL_DATA', target, orderId, reason });
    },

    listDeliveries: (filter: { status?: DeliveryStatus; marketplace?: Marketplace; limit: number }) => deps.deliveries.list(filter),

    async delivery(id: string) {
      const d = await deps.deliveries.get(id);
      if (!d) throw notFound('DELIVERY_NOT_FOUND', 'no such delivery');
      return d;
    },

    droppedNotifications: () => deps.deliveries.droppedCounts(),

    orderIdsByBuyerEmail: (email: string) => deps.orders.orderIdsByBuyerEmail(email),

    /** Everything ingest knows about an order: the order, its events, deliveries, audit rows and erasures. */
    async orderJourney(orderId: string) {
      const order = await deps.orders.get(orderId);
      const deliveries = await deps.deliveries.forOrder(orderId);
      if (!order && deliveries.length === 0) throw notFound('ORDER_NOT_FOUND', 'ingest knows nothing about this order');
      return {
        order,
        deliveries,
        events: order ? await deps.orders.events(orderId) : [],
        audit: () => deps.audit.forOrder(orderId),
        erasures: () => deps.erasures.forOrder(orderId),
      };
    },
  };
}
export type Admin = ReturnType<typeof createAdmin>;
