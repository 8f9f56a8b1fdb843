import { money, parseDecimal, type Marketplace } from '@postsale/contracts';
import { AppError, classifyError, isAppError, type Logger, type SecretBox } from '@postsale/runtime';
import type { IngestMetrics } from '../metrics';
import { openToken } from './credentials';
import { mapEbayOrder } from './ebay-order.mapper';
import { exact, MappingError } from './marketplace-order';
import { mapMercadoLibreOrder, mlRefunds, type MlShipmentResource } from './mercadolibre-order.mapper';
import { orderIdFor } from './order-id';
import { captureStatuses, completedCapture, mapPayPalOrder, storefrontOf, type PayPalCapture } from './paypal-order.mapper';
import type { DeliveryStore, EbayApi, MercadoLibreApi, OrderStore, PayPalCheckoutApi, SellerStore } from './ports';
import { LeaseLostError, type Delivery, type SellerAccount } from './records';
import type { OrderRecorder, Outcome } from './record-order.use-case';

/** Delivery kinds: what the stored raw body is and how it is processed. */
export const DeliveryKinds = {
  ebayOrderConfirmation: 'ebay.order_confirmation',
  mercadoLibreOrder: 'mercadolibre.orders_v2',
  mercadoLibreOther: 'mercadolibre.other_topic',
  paypalCaptureCompleted: 'paypal.capture_completed',
  paypalCaptureRefunded: 'paypal.capture_refunded',
  paypalCaptureReversed: 'paypal.capture_reversed',
  paypalOtherEvent: 'paypal.other_event',
  paypalCheckoutCapture: 'paypal.checkout_capture',
  /** not a marketplace message: our scheduled re-read of an open eBay order (eBay notifies no cancellation/refund) */
  ebayOrderRecheck: 'ebay.order_recheck',
} as const;

export interface ProcessDeps {
  sellers: SellerStore;
  deliveries: DeliveryStore;
  orders: OrderStore;
  recorder: OrderRecorder;
  secrets: SecretBox;
  ebay: EbayApi;
  mercadolibre: MercadoLibreApi;
  paypal: PayPalCheckoutApi;
  logger: Logger;
  metrics: IngestMetrics;
  /** how long a delivery that failed transiently waits before its next attempt (attempts so far → ms) */
  retryDelayMs: (attempts: number) => number;
}

/** Thrown inside processing when the delivery needs a person or a later event (seller registration, etc.). */
class Park extends Error {
  constructor(
    readonly reason: string,
    readonly detail: string,
    readonly accountId?: string,
  ) {
    super(reason);
  }
}

/**
 * Processes one stored delivery from its persisted raw body: route it to a seller, read the truth from the
 * marketplace with that seller's token, and commit the verdict. Transient failures leave it pending with a backoff
 * (never lost); what needs a human (unknown seller, token refused, unmappable data) is parked with the reason.
 * Safe to run again for the same delivery: the verdict commit is idempotent on (marketplace, external order id).
 */
export function createDeliveryProcessor(deps: ProcessDeps) {
  const parked = deps.metrics.parked;

  const routed = (marketplace: Marketplace, accountId: string, account: SellerAccount | undefined): { sellerId: string; token: string | null } => {
    if (!account) throw new Park('UNROUTABLE', `no seller has ${marketplace} account ${accountId}`, accountId);
    return { sellerId: account.sellerId, token: openToken(deps.secrets, account) };
  };
  async function sellerFor(marketplace: Marketplace, accountId: string): Promise<{ sellerId: string; token: string | null }> {
    return routed(marketplace, accountId, await deps.sellers.account(marketplace, accountId));
  }
  /** The seller a delivery routes to and, in the same read, its order when that is received already. */
  async function sellerAndOrder(marketplace: Marketplace, accountId: string, externalOrderId: string) {
    const { account, order } = await deps.sellers.accountAndOrder(marketplace, accountId, orderIdFor(marketplace, externalOrderId));
    return { seller: routed(marketplace, accountId, account), existing: order };
  }
  const requireToken = (s: { token: string | null }, marketplace: string) => {
    if (!s.token) throw new Park('MISSING_SELLER_TOKEN', `the seller has no ${marketplace} token`);
    return s.token;
  };

  async function ebay(d: Delivery): Promise<Outcome> {
    const body = JSON.parse(d.rawBody) as { notification?: { data?: { user?: { username?: string }; order?: { orderId?: string } } } };
    const username = body.notification?.data?.user?.username;
    const externalOrderId = body.notification?.data?.order?.orderId;
    if (!username || !externalOrderId) throw new Park('MALFORMED_NOTIFICATION', 'no user or order id');
    // One notification per line item: once the order is known, the others are duplicates without another read.
    const { seller, existing } = await sellerAndOrder('EBAY', username, externalOrderId);
    if (existing) return deps.recorder.commitVerdict(d, 'EBAY', externalOrderId, seller.sellerId, { kind: 'paid', order: existing.receivedPayload });
    const order = await deps.ebay.getOrder(externalOrderId, requireToken(seller, 'eBay'));
    return deps.recorder.commitVerdict(d, 'EBAY', externalOrderId, seller.sellerId, mapEbayOrder(order, username, d.receivedAt.getTime()));
  }

  /**
   * Re-reads a received eBay order for what eBay never notifies (external-apis.md "Corrections"): `cancelStatus`
   * CANCELED → OrderCancelled; each `paymentSummary.refunds[]` entry with refundStatus REFUNDED → one OrderRefunded
   * with its exact amount, keyed by eBay's refundId (PENDING/FAILED refunds are not money returned yet).
   */
  async function ebayRecheck(d: Delivery): Promise<Outcome> {
    const body = JSON.parse(d.rawBody) as { orderId?: string };
    const row = body.orderId ? await deps.orders.get(body.orderId) : undefined;
    if (!row || row.marketplace !== 'EBAY') throw new Park('ORDER_NOT_FOUND', `no received eBay order ${String(body.orderId)}`);
    const seller = await sellerFor('EBAY', row.accountId);
    const order = await deps.ebay.getOrder(row.externalOrderId, requireToken(seller, 'eBay'));
    if (order.cancelStatus?.cancelState === 'CANCELED') {
      return deps.recorder.commitVerdict(d, 'EBAY', row.externalOrderId, row.sellerId, { kind: 'cancelled', reason: 'CANCELED_ON_EBAY', at: Date.parse(order.lastModifiedDate ?? '') || Date.now() });
    }
    let outcome: Outcome | undefined;
    for (const [i, refund] of (order.paymentSummary?.refunds ?? []).entries()) {
      if (refund.refundStatus !== 'REFUNDED' || !refund.refundId) continue;
      const amount = exact(parseDecimal, refund.amount?.value, refund.amount?.currency, `paymentSummary.refunds[${i}].amount`);
      outcome = await deps.recorder.commitRefund(d, row.orderId, {
        refundId: `ebay:${refund.refundId}`, amount, totalRefunded: null, reason: 'REFUNDED_ON_EBAY',
        at: Date.parse(refund.refundDate ?? '') || Date.now(),
      });
    }
    if (outcome) return outcome;
    await deps.deliveries.decideNow(d.id, 'ignored', { fence: d.fence, reason: 'NO_CHANGE' });
    return { status: 'ignored', reason: 'NO_CHANGE', orderId: row.orderId };
  }

  async function mercadolibre(d: Delivery): Promise<Outcome> {
    const body = JSON.parse(d.rawBody) as { resource?: string; user_id?: number | string };
    const match = /^\/orders\/(\d+)$/.exec(body.resource ?? '');
    if (!match || body.user_id === undefined) throw new Park('MALFORMED_NOTIFICATION', `resource ${String(body.resource)}`);
    const externalOrderId = match[1]!;
    const accountId = String(body.user_id);
    const orderId = orderIdFor('MERCADOLIBRE', externalOrderId);
    const { seller, existing } = await sellerAndOrder('MERCADOLIBRE', accountId, externalOrderId);
    // Only a cancelled or fully refunded order cannot change any more; a partially refunded one still can.
    if (existing && (existing.state === 'CANCELLED' || existing.state === 'REFUNDED')) {
      return deps.recorder.commitVerdict(d, 'MERCADOLIBRE', externalOrderId, seller.sellerId, { kind: 'cancelled', reason: 'REPEAT', at: Date.now() });
    }
    const token = requireToken(seller, 'MercadoLibre');
    const order = await deps.mercadolibre.getOrder(externalOrderId, token);
    if (String(order.id) !== externalOrderId) throw new Park('RESOURCE_MISMATCH', 'MercadoLibre returned another order');
    let shipment: MlShipmentResource | null = null;
    if (order.status === 'paid' && !existing && order.shipping?.id) {
      try {
        shipment = await deps.mercadolibre.getShipment(String(order.shipping.id), token);
      } catch (error) {
        // A shipment that does not exist (or is not ours) is an address problem for review, not a reason to drop the order.
        if (!(isAppError(error) && error.code === 'NOT_FOUND_AT_MARKETPLACE')) throw error;
      }
    }
    let outcome: Outcome;
    // a known order still paid (or marked partially refunded) is the same order: only its refunds can be new
    const stillPaid = order.status === 'paid' || order.status === 'partially_refunded';
    if (existing && order.status === 'invalid') {
      // Corrections: `invalid` is a final status too (MercadoLibre voided the order): treated as a cancellation
      return deps.recorder.commitVerdict(d, 'MERCADOLIBRE', externalOrderId, seller.sellerId, { kind: 'cancelled', reason: 'INVALIDATED_ON_MERCADOLIBRE', at: d.receivedAt.getTime() });
    }
    if (existing && stillPaid) outcome = await deps.recorder.commitVerdict(d, 'MERCADOLIBRE', externalOrderId, seller.sellerId, { kind: 'paid', order: existing.receivedPayload });
    else outcome = await deps.recorder.commitVerdict(d, 'MERCADOLIBRE', externalOrderId, seller.sellerId, mapMercadoLibreOrder(order, shipment, accountId, d.receivedAt.getTime()));
    // Corrections: money returned on an order that stays `paid` shows only in its payments (partial or full refund,
    // chargeback). Each new cumulative total is one OrderRefunded for the difference, keyed by that total, so every
    // notification (MercadoLibre sends one per change) is idempotent.
    if ((order.status === 'paid' || (existing && stillPaid)) && (outcome.status === 'accepted' || outcome.status === 'duplicate')) {
      const refunds = mlRefunds(order);
      if (refunds) outcome = await recordMlRefund(d, orderId, externalOrderId, refunds) ?? outcome;
    }
    return outcome;
  }

  async function recordMlRefund(d: Delivery, orderId: string, externalOrderId: string, refunds: NonNullable<ReturnType<typeof mlRefunds>>): Promise<Outcome | undefined> {
    const current = await deps.orders.get(orderId);
    if (!current) return undefined;
    const before = current.refundedAmountMinor;
    const delta = refunds.total.amountMinor - before;
    if (delta <= 0) return undefined;
    return deps.recorder.commitRefund(d, orderId, {
      refundId: `ml:${externalOrderId}:refunded-total:${refunds.total.amountMinor}`,
      amount: money(delta, refunds.total.currency),
      totalRefunded: refunds.total,
      reason: refunds.chargedBack ? 'CHARGED_BACK' : 'REFUNDED_ON_MERCADOLIBRE',
      at: refunds.at ?? d.receivedAt.getTime(),
    });
  }

  async function paypalCapture(d: Delivery, capture: PayPalCapture, paypalOrderId: string, storefrontHint: string | null): Promise<Outcome> {
    const existing = await deps.orders.get(orderIdFor('PAYPAL_STOREFRONT', paypalOrderId));
    if (existing) return deps.recorder.commitVerdict(d, 'PAYPAL_STOREFRONT', paypalOrderId, existing.sellerId, { kind: 'paid', order: existing.receivedPayload });
    // The capture resource has no ship-to: read the order it belongs to.
    const order = await deps.paypal.getOrder(paypalOrderId);
    const storefrontId = storefrontHint ?? storefrontOf(order, capture);
    if (!storefrontId) throw new Park('UNROUTABLE', 'the PayPal order carries no storefront (custom_id)');
    const seller = await sellerFor('PAYPAL_STOREFRONT', storefrontId);
    return deps.recorder.commitVerdict(d, 'PAYPAL_STOREFRONT', paypalOrderId, seller.sellerId, mapPayPalOrder(order, capture, storefrontId, d.receivedAt.getTime()));
  }

  async function paypalWebhook(d: Delivery): Promise<Outcome> {
    const event = JSON.parse(d.rawBody) as { event_type?: string; resource?: Record<string, unknown>; create_time?: string };
    const resource = (event.resource ?? {}) as unknown as PayPalCapture & { links?: Array<{ rel?: string; href?: string }>; seller_payable_breakdown?: { total_refunded_amount?: { value?: string; currency_code?: string } }; note_to_payer?: string };
    if (d.kind === DeliveryKinds.paypalCaptureCompleted) {
      const paypalOrderId = resource.supplementary_data?.related_ids?.order_id;
      if (!paypalOrderId) throw new Park('MALFORMED_NOTIFICATION', 'capture without related order id');
      return paypalCapture(d, resource, paypalOrderId, resource.custom_id ?? null);
    }
    // REFUNDED: the resource is a refund whose "up" link is the capture. REVERSED: the resource may be the capture itself.
    const up = resource.links?.find((l) => l.rel === 'up')?.href;
    const captureId = up ? up.split('/').pop()! : d.kind === DeliveryKinds.paypalCaptureReversed ? resource.id : undefined;
    if (!captureId) throw new Park('MALFORMED_NOTIFICATION', 'refund without its capture');
    const order = await deps.orders.byPaymentReference('PAYPAL_STOREFRONT', captureId);
    if (!order) throw new Park('ORDER_NOT_FOUND', `no received order has capture ${captureId}`);
    const amount = exact(parseDecimal, resource.amount?.value, resource.amount?.currency_code, 'resource.amount');
    const total = resource.seller_payable_breakdown?.total_refunded_amount;
    return deps.recorder.commitRefund(d, order.orderId, {
      refundId: resource.id,
      amount,
      totalRefunded: total ? exact(parseDecimal, total.value, total.currency_code, 'total_refunded_amount') : null,
      reason: d.kind === DeliveryKinds.paypalCaptureReversed ? 'REVERSED' : (resource.note_to_payer ?? null),
      at: Date.parse(event.create_time ?? '') || d.receivedAt.getTime(),
    });
  }

  async function checkoutCapture(d: Delivery): Promise<Outcome> {
    const body = JSON.parse(d.rawBody) as { paypalOrderId: string; storefrontId: string };
    const { seller, existing } = await sellerAndOrder('PAYPAL_STOREFRONT', body.storefrontId, body.paypalOrderId);
    if (existing) return deps.recorder.commitVerdict(d, 'PAYPAL_STOREFRONT', body.paypalOrderId, existing.sellerId, { kind: 'paid', order: existing.receivedPayload });
    // A storefront captures only its own orders: the order says whose it is (custom_id) before any money moves.
    const before = await deps.paypal.getOrder(body.paypalOrderId);
    const owner = storefrontOf(before);
    if (owner && owner !== body.storefrontId) throw new Park('STOREFRONT_MISMATCH', 'the PayPal order belongs to another storefront');
    const result = await deps.paypal.capture(body.paypalOrderId);
    if (result.kind === 'refused') {
      await deps.deliveries.decideNow(d.id, 'rejected', { fence: d.fence, reason: result.issue });
      return { status: 'rejected', reason: result.issue, orderId: null };
    }
    const storefront = storefrontOf(result.order);
    if (storefront && storefront !== body.storefrontId) throw new Park('STOREFRONT_MISMATCH', `the PayPal order belongs to storefront ${storefront}`);
    // Corrections: a capture can answer 201 while the capture itself is DECLINED or FAILED (the order may still read
    // COMPLETED). Only a COMPLETED capture is paid money: a declined/failed one is refused like INSTRUMENT_DECLINED,
    // a PENDING one waits for PAYMENT.CAPTURE.COMPLETED (mapPayPalOrder answers not-paid).
    const refusedCapture = captureStatuses(result.order).find((status) => status === 'DECLINED' || status === 'FAILED');
    if (refusedCapture && !completedCapture(result.order)) {
      const reason = `CAPTURE_${refusedCapture}`;
      await deps.deliveries.decideNow(d.id, 'rejected', { fence: d.fence, reason });
      return { status: 'rejected', reason, orderId: null };
    }
    return deps.recorder.commitVerdict(d, 'PAYPAL_STOREFRONT', body.paypalOrderId, seller.sellerId, mapPayPalOrder(result.order, undefined, body.storefrontId, d.receivedAt.getTime()));
  }

  async function dispatch(d: Delivery): Promise<Outcome> {
    switch (d.kind) {
      case DeliveryKinds.ebayOrderConfirmation:
        return ebay(d);
      case DeliveryKinds.ebayOrderRecheck:
        return ebayRecheck(d);
      case DeliveryKinds.mercadoLibreOrder:
        return mercadolibre(d);
      case DeliveryKinds.paypalCaptureCompleted:
      case DeliveryKinds.paypalCaptureRefunded:
      case DeliveryKinds.paypalCaptureReversed:
        return paypalWebhook(d);
      case DeliveryKinds.paypalCheckoutCapture:
        return checkoutCapture(d);
      default:
        throw new Park('UNHANDLED_KIND', d.kind);
    }
  }

  return {
    /** Processes a claimed delivery; returns its outcome (status pending = will be retried). */
    async process(d: Delivery): Promise<Outcome> {
      try {
        return await dispatch(d);
      } catch (error) {
        // Another worker claimed the delivery after this one's lease ran out: its decision stands, nothing is written here.
        if (error instanceof LeaseLostError) {
          deps.logger.warn({ deliveryId: d.id, marketplace: d.marketplace }, 'delivery lease lost; the other worker decides it');
          return { status: 'pending', reason: 'LEASE_LOST', orderId: d.orderId };
        }
        if (error instanceof Park) {
          await deps.deliveries.decideNow(d.id, 'parked', { fence: d.fence, reason: error.reason, detail: error.detail, ...(error.accountId ? { accountId: error.accountId } : {}) });
          parked.inc({ marketplace: d.marketplace, reason: error.reason });
          deps.logger.warn({ deliveryId: d.id, marketplace: d.marketplace, reason: error.reason }, 'delivery parked');
          return { status: 'parked', reason: error.reason, orderId: d.orderId };
        }
        if (error instanceof MappingError) {
          await deps.deliveries.decideNow(d.id, 'parked', { fence: d.fence, reason: error.reason, detail: error.message });
          parked.inc({ marketplace: d.marketplace, reason: error.reason });
          return { status: 'parked', reason: error.reason, orderId: d.orderId };
        }
        // The runtime's one classification: an AppError marked permanent that wraps a database or network outage is
        // still transient (retried), and only a refusal caused by the request itself parks the delivery.
        const failure = classifyError(error);
        const retriable = failure.kind !== 'permanent';
        const code = failure.code;
        if (!retriable && error instanceof AppError) {
          // The marketplace's verdict on our request (token refused, order unknown): a person must look.
          await deps.deliveries.decideNow(d.id, 'parked', { fence: d.fence, reason: error.code, detail: error.message });
          parked.inc({ marketplace: d.marketplace, reason: error.code });
          deps.logger.warn({ deliveryId: d.id, marketplace: d.marketplace, code }, 'delivery parked after a refusal');
          return { status: 'parked', reason: error.code, orderId: d.orderId };
        }
        deps.logger.warn({ err: error, deliveryId: d.id, marketplace: d.marketplace, code, attempts: d.attempts }, 'delivery processing failed; will retry');
        await deps.deliveries.retryLater(d.id, d.attempts, deps.retryDelayMs(d.attempts), { code, message: error instanceof Error ? error.message : String(error) }, d.fence);
        return { status: 'pending', reason: code, orderId: d.orderId };
      }
    },
  };
}
export type DeliveryProcessor = ReturnType<typeof createDeliveryProcessor>;
