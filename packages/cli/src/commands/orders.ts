import type { Kafka } from 'kafkajs';
import { allStreams, orderIdFor, topicName, type EventCodec, type Marketplace } from '@postsale/contracts';
import { adminClient, OperatorAuthError } from '../admin-client';
import { readTopicToEnd } from '../kafka-tools';
import { serviceUrls, type OperatorConfig } from '../operator-config';
import type { Journey, KafkaRecord } from '../timeline';

/** An order's journey: what each service knows about it, asked of each service's admin API. */
export async function orderJourney(config: OperatorConfig, orderId: string): Promise<Record<string, unknown>> {
  const journey: Record<string, unknown> = {};
  for (const [service, url] of Object.entries(serviceUrls(config))) {
    const response = await adminClient(url, config.POSTSALE_ADMIN_TOKEN)
      .get(`/admin/orders/${encodeURIComponent(orderId)}`)
      .catch((error: Error) => ({ status: 0, data: { error: { message: error.message } } }));
    if (response.status === 401) throw new OperatorAuthError(`${service} refused the operator credential`);
    journey[service] = response.status === 200 ? response.data : { status: response.status, ...(response.data as object) };
  }
  return journey as Journey & Record<string, unknown>;
}

const MARKETPLACES: Marketplace[] = ['EBAY', 'MERCADOLIBRE', 'PAYPAL_STOREFRONT'];

/**
 * Finds our order id from what an operator has at hand: our id (ord_…), a marketplace order id (our id is derived
 * from it with orderIdFor, so every marketplace is tried), a buyer's email (ingest), an AliExpress order number
 * (fulfillment), or a PayPal payout batch / item id (searched in payouts' list). Returns the candidates that some
 * service knows.
 */
export async function findOrderIds(config: OperatorConfig, query: string): Promise<string[]> {
  const q = query.trim();
  if (!q) return [];
  const urls = serviceUrls(config);
  const known = async (orderId: string) => {
    for (const url of [urls.ingest, urls.fulfillment]) {
      const response = await adminClient(url, config.POSTSALE_ADMIN_TOKEN).get(`/admin/orders/${encodeURIComponent(orderId)}`);
      if (response.status === 401) throw new OperatorAuthError('a service refused the operator credential');
      if (response.status === 200) return true;
    }
    return false;
  };
  if (/^ord_[0-9a-f]{24}$/.test(q)) return (await known(q)) ? [q] : [];
  const found: string[] = [];
  for (const marketplace of MARKETPLACES) {
    const id = orderIdFor(marketplace, q);
    if (await known(id)) found.push(id);
  }
  if (found.length > 0) return found;
  // A buyer's email lives in ingest; an AliExpress order number in fulfillment: each answers with our ids only.
  const lookup = async (url: string, params: Record<string, string>) => {
    const answer = await adminClient(url, config.POSTSALE_ADMIN_TOKEN).get('/admin/orders', { params });
    return answer.status === 200 ? (answer.data as { orderIds: string[] }).orderIds : [];
  };
  if (q.includes('@')) return lookup(urls.ingest, { buyerEmail: q });
  const bySupplier = await lookup(urls.fulfillment, { supplierOrderId: q });
  if (bySupplier.length > 0) return bySupplier;
  // PayPal batch or item ids live only in payouts: its list carries them on each item.
  const response = await adminClient(urls.payouts, config.POSTSALE_ADMIN_TOKEN).get('/admin/payouts', { params: { limit: 1000 } });
  if (response.status !== 200) return [];
  const payouts = (response.data as { payouts: Array<{ orderId: string; items?: Array<Record<string, unknown>> }> }).payouts;
  return [...new Set(payouts.filter((p) => (p.items ?? []).some((i) => Object.values(i).some((v) => v === q))).map((p) => p.orderId))];
}

/** Where the order's events sit in Kafka: every record keyed by the order id in the pipeline's topics, decoded. */
export async function orderKafkaRecords(kafka: Kafka, codec: EventCodec, namespace: string, orderId: string): Promise<KafkaRecord[]> {
  const records: KafkaRecord[] = [];
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics().finally(() => admin.disconnect()));
  for (const stream of allStreams()) {
    const topic = topicName(stream, namespace);
    if (!existing.has(topic)) continue;
    for (const m of (await readTopicToEnd(kafka, topic)).filter((x) => x.key === orderId)) {
      const event = m.value ? await codec.decode(m.value).catch(() => undefined) : undefined;
      records.push({
        topic, partition: m.partition, offset: m.offset, timestamp: new Date(Number(m.timestamp)).toISOString(),
        type: event?.type ?? 'undecodable', eventId: event?.eventId,
      });
    }
  }
  return records;
}
