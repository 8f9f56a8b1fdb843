import { Streams } from '@postsale/contracts';
import type { ServiceDefinition, Tx } from '@postsale/runtime';
import { configSchema } from './config';
import { migrations } from './db/migrations';
import { SalesRepository } from './db/sales.repository';
import { SaleLedger } from './domain/sale-ledger.use-case';
import { adminRoutes } from './http/admin.routes';
import { ledgerConsumer } from './kafka/ledger.consumer';
import { createSalesMetrics } from './metrics';

export const salesService: ServiceDefinition<typeof configSchema> = {
  name: 'sales',
  configSchema,
  migrations,
  produces: [Streams.sales],
  build({ config, db, outbox, metrics }) {
    const salesMetrics = createSalesMetrics(metrics);
    const settings = { defaultCommissionRateBps: config.DEFAULT_COMMISSION_RATE_BPS, fxMaxRateAgeDays: config.FX_MAX_RATE_AGE_DAYS };
    // Everything the ledger does happens inside one transaction: the consumer's inbox transaction or an admin request's.
    const ledgerFor = (trx: Tx) =>
      new SaleLedger({
        store: new SalesRepository(trx),
        events: { publish: (event) => outbox.publish(trx, Streams.sales, event) },
        observer: salesMetrics.observerFor(trx),
        settings,
        now: () => new Date(),
      });
    return {
      consumers: [ledgerConsumer(config.SALES_CONSUMER_GROUP, ledgerFor)],
      routes: adminRoutes({ db, adminToken: config.ADMIN_TOKEN, operatorToken: config.OPERATOR_TOKEN, saleDeadlineSeconds: config.SALE_DEADLINE_SECONDS, ledgerFor }),
    };
  },
};
