import type { Metrics } from '@postsale/runtime';
import type { FulfillmentStore } from './domain/ports';

/** The business metrics the issue asks for, registered once per service instance. */
export function createFulfillmentMetrics(metrics: Metrics, repo: Pick<FulfillmentStore, 'countByState'>) {
  return {
    purchases: metrics.counter('fulfillment_purchases_total', 'Purchase outcomes by outcome and reason', ['outcome', 'reason', 'channel']),
    supplierCalls: metrics.histogram('fulfillment_supplier_call_duration_seconds', 'Supplier API call latency by method and outcome', ['method', 'outcome'],
      [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
    orderToPurchase: metrics.histogram('fulfillment_order_to_purchase_seconds', 'Time from order received to purchase completed (paid)', [],
      [1, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 3 * 86_400]),
    timeToTracking: metrics.histogram('fulfillment_time_to_tracking_seconds', 'Time from purchase to the first tracking number', [],
      [60, 3600, 6 * 3600, 86_400, 2 * 86_400, 4 * 86_400, 7 * 86_400, 14 * 86_400]),
    trackingPushes: metrics.counter('fulfillment_tracking_pushes_total', 'Tracking pushes to marketplaces by outcome', ['marketplace', 'outcome']),
    workerFailures: metrics.counter('fulfillment_step_failures_total', 'Supplier/marketplace steps that failed and will be retried', ['step', 'code']),
    reviewQueue: metrics.gauge('fulfillment_review_queue_size', 'Orders waiting in the review queue', [], async function () {
      this.set(await repo.countByState('NEEDS_REVIEW'));
    }),
  };
}
export type FulfillmentMetrics = ReturnType<typeof createFulfillmentMetrics>;
