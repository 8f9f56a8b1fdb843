import type { AxiosInstance } from 'axios';
import type { Marketplace } from '@postsale/contracts';
import type { Kafka } from 'kafkajs';
import { SERVICES, type DemoMarketplace, type ServiceName } from '@postsale/cli';
import { allStreams, dlqTopicName } from '@postsale/contracts';
import { orderIdFor } from '@postsale/contracts';

/** Our order id for a demo order, derived exactly as ingest derives it. */
export function orderIdOf(marketplace: DemoMarketplace, externalOrderId: string): string {
  const contract: Record<DemoMarketplace, Marketplace> = { ebay: 'EBAY', mercadolibre: 'MERCADOLIBRE', paypal: 'PAYPAL_STOREFRONT' };
  return orderIdFor(contract[marketplace], externalOrderId);
}

export interface MoneyView {
  amountMinor: number;
  currency: string;
}
export interface PayoutIntentView {
  id: string;
  recipient: 'PLATFORM' | 'SELLER';
  status: string;
  amount: MoneyView;
  payable: MoneyView;
  items: Array<{
    senderItemId: string;
    receiver: string;
    status: string;
    /** what PayPal was asked to pay, in the payout currency */
    amount: MoneyView;
    /** what was owed in the sale currency, when it was converted */
    owed: MoneyView | null;
    fx: { rate: string; rateDate: string; rounding: string } | null;
  }>;
}

export async function payoutsOf(payouts: AxiosInstance, orderId: string): Promise<PayoutIntentView[]> {
  const response = await payouts.get(`/admin/orders/${orderId}/payouts`);
  return response.status === 200 ? (response.data.payouts as PayoutIntentView[]) : [];
}

/** Both recipients paid (a recipient with nothing to receive, as on a loss order, counts as done). */
export async function paidOut(payouts: AxiosInstance, orderId: string): Promise<PayoutIntentView[] | undefined> {
  const intents = await payoutsOf(payouts, orderId);
  const done = intents.length === 2 && intents.every((i) => i.status === 'SENT' || i.status === 'SKIPPED');
  return done ? intents : undefined;
}

/** Nothing was dead-lettered: every stream's dead-letter topic is empty and no service counted one. */
export async function expectNoDeadLetters(kafka: Kafka, namespace: string, admin: Record<ServiceName, AxiosInstance>): Promise<void> {
  const kadmin = kafka.admin();
  await kadmin.connect();
  try {
    for (const stream of allStreams()) {
      const offsets = await kadmin.fetchTopicOffsets(dlqTopicName(stream, namespace));
      expect([stream.stream, offsets.reduce((sum, o) => sum + Number(o.high), 0)]).toEqual([stream.stream, 0]);
    }
  } finally {
    await kadmin.disconnect();
  }
  for (const s of SERVICES) {
    const text = (await admin[s].get('/metrics')).data as string;
    expect([s, [...text.matchAll(/^events_dead_lettered_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)]).toEqual([s, 0]);
  }
}
