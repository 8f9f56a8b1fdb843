import type { Metrics } from '@postsale/runtime';
import type { DeliveryStatus } from './domain/records';

/** Every counter, gauge and histogram ingest owns, registered once per service instance. */
export function createIngestMetrics(metrics: Metrics) {
  return {
    webhooks: metrics.counter('ingest_webhooks_total', 'Webhook deliveries by marketplace and outcome', ['marketplace', 'outcome']),
    parked: metrics.counter('ingest_deliveries_parked_total', 'Deliveries parked for a person or a later event', ['marketplace', 'reason']),
    emitted: metrics.counter('ingest_orders_emitted_total', 'Events ingest committed to the orders stream', ['marketplace', 'type']),
    erasures: metrics.counter('ingest_personal_data_erasures_total', 'Orders whose buyer personal data was erased, by cause', ['cause']),
    signatureFailures: metrics.counter('ingest_signature_failures_total', 'Webhook deliveries refused for an invalid signature', ['marketplace']),
    ackSeconds: metrics.histogram('ingest_webhook_ack_seconds', 'Time from request to acknowledgement', ['marketplace'], [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
    rateLimited: metrics.counter('ingest_rate_limited_total', 'Requests refused by the per-address rate limit'),
    /** parked and pending deliveries, counted when scraped */
    watchDeliveries(countByStatus: (status: DeliveryStatus) => Promise<number>): void {
      metrics.gauge('ingest_parked_deliveries', 'Deliveries parked for review or a later event', [], async function () {
        this.set(await countByStatus('parked'));
      });
      metrics.gauge('ingest_pending_deliveries', 'Deliveries persisted and not yet decided', [], async function () {
        this.set(await countByStatus('pending'));
      });
    },
  };
}
export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
