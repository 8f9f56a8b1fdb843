import type { PayPalFake } from '../src/paypal/paypal-fake';

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read provider JSON freely

/** Small HTTP helpers for the PayPal fake tests (plain fetch, as our axios clients would call it). */
export async function accessToken(fake: PayPalFake): Promise<string> {
  const res = await fetch(`${fake.url}/v1/oauth2/token`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${fake.clientId}:${fake.clientSecret}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  if (res.status !== 200) throw new Error(`token: ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export async function call(
  fake: PayPalFake,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export function payoutBody(senderBatchId: string, items: Array<{ receiver: string; value: string; currency?: string; senderItemId?: string }>) {
  return {
    sender_batch_header: { sender_batch_id: senderBatchId, email_subject: 'You have a payout!', email_message: 'Thanks for selling with us', recipient_type: 'EMAIL' },
    items: items.map((i, n) => ({
      recipient_type: 'EMAIL',
      amount: { value: i.value, currency: i.currency ?? 'USD' },
      receiver: i.receiver,
      note: 'Reseller payout',
      sender_item_id: i.senderItemId ?? `${senderBatchId}-${n}`,
    })),
  };
}
