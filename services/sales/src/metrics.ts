import { afterCommit, type Metrics, type Tx } from '@postsale/runtime';
import type { AppliedAmounts, OrderState, SaleRecord, SalesObserver } from './domain/ports';

/**
 * The service's business metrics. Money counters are in minor units, labelled by currency (never summed across
 * currencies). Counted only after the transaction commits, so retried or rolled-back attempts never count: the
 * observer the use cases are given, each hook told the transaction it happened in.
 */
export function createSalesMetrics(metrics: Metrics): SalesObserver {
  const m = {
    recorded: metrics.counter('sales_recorded_total', 'Sales recorded in the ledger', ['currency']),
    revenue: metrics.counter('sales_revenue_minor_total', 'Sale amounts recorded, minor units', ['currency']),
    grossProfit: metrics.counter('sales_gross_profit_minor_total', 'Positive gross profit recorded, minor units', ['currency']),
    commission: metrics.counter('sales_commission_minor_total', 'Platform commission recorded, minor units', ['currency']),
    netProfit: metrics.counter('sales_seller_net_profit_minor_total', 'Seller net profit recorded, minor units', ['currency']),
    lossOrders: metrics.counter('sales_loss_orders_total', 'Sales recorded as loss orders (gross profit <= 0); alert on any increase', ['currency']),
    lossAmount: metrics.counter('sales_loss_minor_total', 'Losses borne by sellers, minor units', ['currency']),
    reversals: metrics.counter('sales_reversals_total', 'Cancellations and refunds posted as reversals', ['currency', 'kind']),
    refunded: metrics.counter('sales_refunded_minor_total', 'Amounts reversed by cancellations and refunds, minor units', ['currency']),
    commissionClawedBack: metrics.counter('sales_commission_reversed_minor_total', 'Commission clawed back by reversals, minor units', ['currency']),
    held: metrics.counter('sales_held_total', 'Times a sale was held instead of recorded', ['state']),
    purchaseToSale: metrics.histogram('sales_purchase_to_sale_seconds', 'Time from the supplier purchase to the recorded sale', [],
      [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600]),
  };
  return {
    saleRecorded(trx: Tx, sale: SaleRecord, purchasedAt: Date) {
      afterCommit(trx, () => {
        const b = sale.breakdown;
        const currency = b.saleAmount.currency;
        m.recorded.inc({ currency });
        m.revenue.inc({ currency }, b.saleAmount.amountMinor);
        m.grossProfit.inc({ currency }, Math.max(0, b.grossProfit.amountMinor));
        m.commission.inc({ currency }, b.platformCommission.amountMinor);
        m.netProfit.inc({ currency }, b.sellerNetProfit.amountMinor);
        if (b.isLoss) {
          m.lossOrders.inc({ currency });
          m.lossAmount.inc({ currency }, b.loss.amountMinor);
        }
        m.purchaseToSale.observe(Math.max(0, (sale.recordedAt.getTime() - purchasedAt.getTime()) / 1000));
      });
    },
    saleReversed(trx: Tx, sale: SaleRecord, applied: AppliedAmounts) {
      afterCommit(trx, () => {
        const currency = sale.breakdown.saleAmount.currency;
        m.reversals.inc({ currency, kind: applied.reversalKind });
        m.refunded.inc({ currency }, applied.refundedMinor);
        m.commissionClawedBack.inc({ currency }, applied.commissionReversedMinor);
        if (applied.lossAddedMinor > 0) m.lossAmount.inc({ currency }, applied.lossAddedMinor);
      });
    },
    saleHeld(trx: Tx, state: OrderState) {
      afterCommit(trx, () => m.held.inc({ state }));
    },
  };
}
