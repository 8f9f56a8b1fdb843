import { money, parseDecimal, subtract, type OrderLine } from '@postsale/contracts';
import { completeAddress } from './address';
import { exact, MappingError, type MarketplaceOrderVerdict } from './marketplace-order';

interface PMoney {
  currency_code?: string;
  value?: string;
}
export interface PayPalCapture {
  id: string;
  status?: string;
  amount?: PMoney;
  custom_id?: string;
  seller_receivable_breakdown?: { gross_amount?: PMoney; paypal_fee?: PMoney; net_amount?: PMoney };
  supplementary_data?: { related_ids?: { order_id?: string } };
  create_time?: string;
}
/** Orders v2 order, as the capture call or `GET /v2/checkout/orders/{id}` returns it. */
export interface PayPalOrder {
  id: string;
  status?: string;
  payer?: { name?: { given_name?: string; surname?: string }; email_address?: string; payer_id?: string };
  purchase_units?: Array<{
    reference_id?: string;
    custom_id?: string;
    amount?: PMoney & { breakdown?: { item_total?: PMoney; shipping?: PMoney } };
    items?: Array<{ name?: string; sku?: string; quantity?: string; unit_amount?: PMoney }>;
    shipping?: {
      name?: { full_name?: string };
      address?: { address_line_1?: string; address_line_2?: string; admin_area_2?: string; admin_area_1?: string; postal_code?: string; country_code?: string };
    };
    payments?: { captures?: PayPalCapture[] };
  }>;
}

const pm = (v: PMoney | undefined, field: string) => exact(parseDecimal, v?.value, v?.currency_code, field);

/** The storefront a PayPal order belongs to: `custom_id` (set by the storefront when it creates the order). */
export function storefrontOf(order: PayPalOrder | undefined, capture?: PayPalCapture): string | null {
  return capture?.custom_id ?? order?.purchase_units?.find((u) => u.custom_id)?.custom_id ?? null;
}

/** The statuses of every capture of an order (COMPLETED, PENDING, DECLINED, FAILED, …). */
export function captureStatuses(order: PayPalOrder): string[] {
  return order.purchase_units?.flatMap((u) => u.payments?.captures ?? []).map((c) => c.status ?? 'UNKNOWN') ?? [];
}

/** The completed capture of an order, if any. */
export function completedCapture(order: PayPalOrder): PayPalCapture | undefined {
  return order.purchase_units?.flatMap((u) => u.payments?.captures ?? []).find((c) => c.status === 'COMPLETED');
}

/**
 * A storefront order paid through PayPal. Lines come from `purchase_units[].items` when the storefront sent them;
 * otherwise the purchase unit itself is one line (listing = reference_id). The PayPal fee comes from the capture's
 * seller_receivable_breakdown (absent while the capture is PENDING — then the order is not paid yet).
 */
export function mapPayPalOrder(order: PayPalOrder, capture: PayPalCapture | undefined, storefrontId: string, receivedAt: number): MarketplaceOrderVerdict {
  try {
    const cap = capture ?? completedCapture(order);
    if (!cap || cap.status !== 'COMPLETED') return { kind: 'not-paid', status: cap?.status ?? order.status ?? 'UNKNOWN' };
    const unit = order.purchase_units?.[0];
    if (!unit) throw new MappingError('NO_PURCHASE_UNIT', 'order has no purchase unit');
    if ((order.purchase_units?.length ?? 0) > 1) throw new MappingError('MULTIPLE_PURCHASE_UNITS', 'only one purchase unit per storefront order is supported');
    const saleAmount = pm(cap.amount, 'capture.amount');
    const currency = saleAmount.currency;
    const shippingAmount = unit.amount?.breakdown?.shipping ? pm(unit.amount.breakdown.shipping, 'amount.breakdown.shipping') : money(0, currency);
    const itemsAmount = subtract(saleAmount, shippingAmount);
    let lines: OrderLine[];
    if (unit.items?.length) {
      lines = unit.items.map((item, i) => {
        const quantity = Number(item.quantity ?? '1');
        if (!Number.isInteger(quantity) || quantity < 1) throw new MappingError('INVALID_QUANTITY', `items[${i}].quantity`);
        return { lineId: `${unit.reference_id ?? 'default'}-${i + 1}`, listingId: item.sku ?? item.name ?? `item-${i + 1}`, sku: item.sku ?? null, title: item.name ?? null, quantity, unitPrice: pm(item.unit_amount, `items[${i}].unit_amount`) };
      });
      const total = lines.reduce((s, l) => s + l.unitPrice.amountMinor * l.quantity, 0);
      if (total !== itemsAmount.amountMinor) throw new MappingError('ITEMS_DO_NOT_ADD_UP', `items total ${total} vs ${itemsAmount.amountMinor}`);
    } else {
      const ref = unit.reference_id ?? 'default';
      lines = [{ lineId: ref, listingId: ref, sku: null, title: null, quantity: 1, unitPrice: itemsAmount }];
    }
    const a = unit.shipping?.address;
    const address = completeAddress(
      unit.shipping && {
        fullName: unit.shipping.name?.full_name,
        line1: a?.address_line_1,
        line2: a?.address_line_2,
        city: a?.admin_area_2,
        region: a?.admin_area_1,
        postalCode: a?.postal_code,
        countryCode: a?.country_code,
      },
    );
    const fee = cap.seller_receivable_breakdown?.paypal_fee;
    const name = [order.payer?.name?.given_name, order.payer?.name?.surname].filter(Boolean).join(' ');
    return {
      kind: 'paid',
      order: {
        marketplace: 'PAYPAL_STOREFRONT',
        externalOrderId: order.id,
        marketplaceAccountId: storefrontId,
        lines,
        buyer: { externalId: order.payer?.payer_id ?? null, name: name || null, email: order.payer?.email_address ?? null },
        ...address,
        itemsAmount,
        shippingAmount,
        saleAmount,
        marketplaceFee: null,
        paymentFee: fee ? pm(fee, 'seller_receivable_breakdown.paypal_fee') : null,
        paymentReference: cap.id,
        receivedAt,
      },
    };
  } catch (error) {
    if (error instanceof MappingError) return { kind: 'unmappable', reason: error.reason, detail: error.message };
    throw error;
  }
}
