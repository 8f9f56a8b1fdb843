import { uniqueId } from '@postsale/runtime/testing';
import { buildMlOrder, buildMlShipment } from '@postsale/sandbox';
import { useIngest } from '../support/ingest-harness';

/**
 * Webhooks are stored through connections of their own (`ACK_DB_POOL_MAX`): with one shared pool, the delivery
 * worker's and inline processing's transactions held every connection under load and acks queued behind them (the
 * benchmark's ack mode: 670 ms mean wait for a connection at 100 webhooks/s).
 */
describe('ingest acks while the main pool is exhausted', () => {
  // a main pool of two, so the test can hold all of it
  const h = useIngest({ env: { DB_POOL_MAX: '2', ACK_DB_POOL_MAX: '2', DELIVERY_POLL_INTERVAL_MS: '200' } });

  it('when every connection of the main pool is held by long transactions, then a MercadoLibre notification is still stored and acknowledged at once', async () => {
    const userId = Number(`8${Date.now() % 1e8}`);
    const token = uniqueId('APP_USR-');
    await h.registerMlSeller(userId, token);
    const shipment = h.ml.seedShipment(buildMlShipment({ sellerId: userId }));
    const order = h.ml.seedOrder(buildMlOrder({ sellerId: userId, shipmentId: shipment.id, items: [{ id: 'MLC1', title: 'Cable', quantity: 1, unitPrice: 5990 }] }));

    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holding: Array<Promise<void>> = [];
    let held = 0;
    const allHeld = new Promise<void>((resolve) => {
      for (let i = 0; i < 2; i++) {
        holding.push(h.service.ctx.db.transaction(async (trx) => {
          await trx.raw('select 1');
          if (++held === 2) resolve();
          await released;
        }));
      }
    });
    await allHeld;
    try {
      const started = Date.now();
      const res = await h.ml.deliver(`${h.service.url}/webhooks/mercadolibre`, h.ml.notification({ orderId: order.id, userId }));
      expect(res.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(2_000); // a shared pool would wait for a connection (knex: up to 60 s)
    } finally {
      release();
      await Promise.all(holding);
    }
    // once the pool is free again the worker processes the stored delivery as usual
    const decided = await h.deliveryDecided({ external_order_id: String(order.id) }, 'the stored notification processed');
    expect(decided.status).toBe('accepted');
  });
});
