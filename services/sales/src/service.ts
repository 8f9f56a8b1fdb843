import { Streams } from '@postsale/contracts';
import { createPoller, type ServiceDefinition } from '@postsale/runtime';
import { configSchema } from './config';
import { migrations } from './db/migrations';
import { SalesRepository } from './db/sales.repository';
import type { SalesDeps } from './domain/ports';
import { adminRoutes } from './http/admin.routes';
import { rollUpBalances } from './domain/reports.use-case';
import { ledgerConsumer } from './kafka/ledger.consumer';
import { createSalesMetrics } from './metrics';

export const salesService: ServiceDefinition<typeof configSchema> = {
  name: 'sales',
  configSchema,
  migrations,
  produces: [Streams.sales],
  build({ config, db, outbox, metrics, logger }) {
    const repo = new SalesRepository(db);
    // Everything the ledger does happens inside one transaction: the consumer's inbox transaction or an admin request's
    // (opened by the admin use case through the store). Each port takes that transaction per call.
    const deps: SalesDeps = {
      store: repo,
      reports: repo,
      events: {
        publish: (trx, event) => outbox.publish(trx, Streams.sales, event),
        row: (event) => outbox.row(Streams.sales, event),
        written: (trx) => outbox.written(trx),
      },
      observer: createSalesMetrics(metrics),
      settings: { defaultCommissionRateBps: config.DEFAULT_COMMISSION_RATE_BPS, fxMaxRateAgeDays: config.FX_MAX_RATE_AGE_DAYS },
      now: () => new Date(),
    };
    const balances = createPoller({ name: 'sales.balances-rollup', intervalMs: config.LEDGER_ROLLUP_INTERVAL_MS, run: () => rollUpBalances(deps), logger, metrics });
    return {
      consumers: [ledgerConsumer(config.SALES_CONSUMER_GROUP, deps)],
      workers: [balances],
      routes: adminRoutes(deps, { adminToken: config.ADMIN_TOKEN, operatorToken: config.OPERATOR_TOKEN, saleDeadlineSeconds: config.SALE_DEADLINE_SECONDS }),
    };
  },
};
