import { callHttp, type OutboundRequest, type OutboundResponse } from '@postsale/runtime';
import { MarketplacePushError, type MarketplaceToken, type MarketplaceTracking, type TrackingPushInput } from '../domain/ports';

export { MarketplacePushError };
export type { TrackingPushInput };

/**
 * Pushes tracking to the marketplace the order came from, with the seller's own token. Both pushes are made safe to
 * retry: eBay's shipping_fulfillment is not idempotent, so we first list the order's fulfillments and skip the POST
 * when our tracking number is already there; MercadoLibre's PUT and seller notification just restate the same facts.
 */
async function request(url: string, init: OutboundRequest): Promise<{ status: number; body: unknown; header: (name: string) => string | undefined }> {
  let response: OutboundResponse;
  try {
    response = await callHttp(url, init);
  } catch (error) {
    // connection refused, reset or a lost answer: the marketplace may have acted; the push is safe to repeat (eBay is
    // read back first, MercadoLibre restates the same facts), so it is retried like any transient failure
    throw new MarketplacePushError('NETWORK_ERROR', error instanceof Error ? error.message : 'request failed', true, true);
  }
  const raw = response.text;
  let body: unknown = raw;
  try {
    body = raw ? JSON.parse(raw) : null;
  } catch {
    /* keep text */
  }
  if (response.status >= 500 || response.status === 429) {
    throw new MarketplacePushError(`HTTP_${response.status}`, `marketplace answered ${response.status}`, true, true);
  }
  if (response.status >= 400) {
    // 401 may be an expired token an operator can replace: retried (bounded) rather than dropped
    throw new MarketplacePushError(`HTTP_${response.status}`, JSON.stringify(body).slice(0, 500), response.status === 401);
  }
  return { status: response.status, body, header: response.header };
}

/** eBay Fulfillment API: POST /sell/fulfillment/v1/order/{orderId}/shipping_fulfillment. */
export class EbayTrackingClient {
  constructor(private readonly options: { baseUrl: string; accessToken: string; timeoutMs: number; carrierCode?: string | null }) {}

  async push(input: TrackingPushInput): Promise<Record<string, unknown>> {
    const path = `/sell/fulfillment/v1/order/${encodeURIComponent(input.externalOrderId)}/shipping_fulfillment`;
    const headers = { authorization: `Bearer ${this.options.accessToken}`, 'content-type': 'application/json' };
    const existing = await request(new URL(path, this.options.baseUrl).toString(), { method: 'GET', headers, timeoutMs: this.options.timeoutMs });
    const fulfillments = ((existing.body as { fulfillments?: Array<{ fulfillmentId?: string; shipmentTrackingNumber?: string }> })?.fulfillments ?? []);
    // eBay accepts only letters and digits
    const trackingNumber = input.trackingNumber.replace(/[^A-Za-z0-9]/g, '');
    const already = fulfillments.find((f) => f.shipmentTrackingNumber === trackingNumber);
    if (already) return { alreadyPushed: true, fulfillmentId: already.fulfillmentId };
    const created = await request(new URL(path, this.options.baseUrl).toString(), {
      method: 'POST',
      headers,
      timeoutMs: this.options.timeoutMs,
      body: JSON.stringify({
        lineItems: input.lines.map((l) => ({ lineItemId: l.lineId, quantity: l.quantity })),
        shippedDate: input.shippedAt.toISOString(),
        shippingCarrierCode: this.options.carrierCode || input.carrier,
        trackingNumber,
      }),
    });
    return { location: created.header('location') ?? null };
  }
}

/** MercadoLibre me1: PUT /shipments/{id} then POST /shipments/{id}/seller_notifications. */
export class MercadoLibreTrackingClient {
  constructor(private readonly options: { baseUrl: string; accessToken: string; timeoutMs: number; serviceId: number | null }) {}

  async push(input: TrackingPushInput): Promise<Record<string, unknown>> {
    if (this.options.serviceId === null) {
      throw new MarketplacePushError('ML_SERVICE_ID_MISSING', 'the seller has no MercadoLibre service_id configured', true);
    }
    const headers = { authorization: `Bearer ${this.options.accessToken}`, 'content-type': 'application/json' };
    const url = (path: string) => new URL(path, this.options.baseUrl).toString();
    const order = await request(url(`/orders/${encodeURIComponent(input.externalOrderId)}`), { method: 'GET', headers, timeoutMs: this.options.timeoutMs });
    const shipmentId = (order.body as { shipping?: { id?: number | string } })?.shipping?.id;
    if (shipmentId === undefined || shipmentId === null) {
      throw new MarketplacePushError('ML_NO_SHIPMENT', 'the MercadoLibre order has no shipment', false);
    }
    const serviceId = this.options.serviceId;
    await request(url(`/shipments/${shipmentId}`), {
      method: 'PUT',
      headers: { ...headers, 'x-format-new': 'true' },
      timeoutMs: this.options.timeoutMs,
      body: JSON.stringify({ service_id: serviceId, tracking_number: input.trackingNumber }),
    });
    await request(url(`/shipments/${shipmentId}/seller_notifications`), {
      method: 'POST',
      headers,
      timeoutMs: this.options.timeoutMs,
      body: JSON.stringify({
        payload: { service_id: serviceId, comment: `${input.carrier} ${input.trackingNumber}`, date: input.shippedAt.toISOString() },
        tracking_number: input.trackingNumber,
        status: 'shipped',
        substatus: 'null',
      }),
    });
    return { shipmentId };
  }
}

/** The domain's MarketplaceTracking port: a client per push, built from the seller's token, for the order's marketplace. */
export class MarketplaceTrackingClients implements MarketplaceTracking {
  constructor(private readonly options: { ebayBaseUrl: string; mercadoLibreBaseUrl: string; timeoutMs: number }) {}

  push(marketplace: string, token: MarketplaceToken, input: TrackingPushInput): Promise<Record<string, unknown>> {
    const { timeoutMs } = this.options;
    if (marketplace === 'EBAY') return new EbayTrackingClient({ baseUrl: this.options.ebayBaseUrl, accessToken: token.accessToken, timeoutMs, carrierCode: token.ebayCarrierCode }).push(input);
    return new MercadoLibreTrackingClient({ baseUrl: this.options.mercadoLibreBaseUrl, accessToken: token.accessToken, timeoutMs, serviceId: token.mlServiceId }).push(input);
  }
}
