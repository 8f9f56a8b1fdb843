import { add, money, parseDecimal, sum, type Money, type OrderLine } from '@postsale/contracts';
import { completeAddress } from './address';
import { exact, MappingError, type MarketplaceOrderVerdict } from './marketplace-order';

/** The parts of MercadoLibre's `/orders/{id}` this service reads (amounts and ids are JSON numbers). */
export interface MlOrderResource {
  id: number;
  status: string;
  currency_id: string;
  total_amount?: number;
  order_items: Array<{
    item: { id: string; title?: string | null; variation_id?: number | null; seller_sku?: string | null };
    quantity: number;
    unit_price: number;
    currency_id?: string;
    sale_fee?: number | null;
  }>;
  buyer?: { id?: number; nickname?: string };
  payments?: Array<{
    id: number; status: string; shipping_cost?: number | null; marketplace_fee?: number | null; currency_id?: string;
    transaction_amount?: number | null; transaction_amount_refunded?: number | null; date_last_modified?: string | null;
  }>;
  shipping?: { id?: number | null };
  pack_id?: number | null;
  cancel_detail?: { code?: string; date?: string } | null;
  date_closed?: string | null;
}

/**
 * Money MercadoLibre has returned on an order that may still read `paid` (external-apis.md "Corrections"): the sum of
 * `payments[].transaction_amount_refunded`, and for a payment `charged_back` its whole `transaction_amount`. Exact
 * (minor units from the JSON numbers); null when nothing was returned.
 */
export function mlRefunds(order: MlOrderResource): { total: Money; chargedBack: boolean; at: number | null } | null {
  const currency = order.currency_id;
  let minor = 0;
  let chargedBack = false;
  let at: number | null = null;
  for (const [i, p] of (order.payments ?? []).entries()) {
    const refunded = exact(parseDecimal, p.transaction_amount_refunded ?? 0, currency, `payments[${i}].transaction_amount_refunded`).amountMinor;
    const whole = exact(parseDecimal, p.transaction_amount ?? 0, currency, `payments[${i}].transaction_amount`).amountMinor;
    const back = p.status === 'charged_back' ? Math.max(refunded, whole) : p.status === 'refunded' ? Math.max(refunded, whole) : refunded;
    if (back > 0) {
      minor += back;
      chargedBack ||= p.status === 'charged_back';
      const when = Date.parse(p.date_last_modified ?? '');
      if (Number.isFinite(when)) at = Math.max(at ?? 0, when);
    }
  }
  return minor > 0 ? { total: money(minor, currency), chargedBack, at } : null;
}

/** `/shipments/{id}` receiver address (country is `{id: "CL", name: "Chile"}`: the id is the ISO code). */
export interface MlShipmentResource {
  id: number;
  receiver_address?: {
    address_line?: string | null;
    street_name?: string | null;
    street_number?: string | null;
    comment?: string | null;
    zip_code?: string | null;
    city?: { name?: string | null } | null;
    state?: { id?: string | null; name?: string | null } | null;
    country?: { id?: string | null; name?: string | null } | null;
    receiver_name?: string | null;
    receiver_phone?: string | null;
  } | null;
}

const PAID = new Set(['paid']);

/**
 * Maps one MercadoLibre order. Carts (`pack_id`): each order of a pack is its own OrderReceived, keyed by the
 * order id (not the pack id) — every order of a pack has its own payment, fee and status and can be cancelled on its
 * own, and notifications arrive per order, so waiting for "the whole pack" would need a guess about when it is
 * complete. The pack id is kept in the delivery record for audit.
 */
export function mapMercadoLibreOrder(order: MlOrderResource, shipment: MlShipmentResource | null, accountId: string, receivedAt: number): MarketplaceOrderVerdict {
  try {
    if (order.status === 'cancelled') {
      const at = order.cancel_detail?.date ? Date.parse(order.cancel_detail.date) : NaN;
      return { kind: 'cancelled', reason: order.cancel_detail?.code ? `MERCADOLIBRE_${order.cancel_detail.code.toUpperCase()}` : 'CANCELLED_ON_MERCADOLIBRE', at: Number.isFinite(at) ? at : receivedAt };
    }
    if (!PAID.has(order.status)) return { kind: 'not-paid', status: order.status };
    const currency = order.currency_id;
    if (!order.order_items?.length) throw new MappingError('NO_LINE_ITEMS', 'order has no items');
    const lines: OrderLine[] = order.order_items.map((oi, i) => {
      if (!Number.isInteger(oi.quantity) || oi.quantity < 1) throw new MappingError('INVALID_QUANTITY', `order_items[${i}].quantity`);
      const lineCurrency = oi.currency_id ?? currency;
      if (lineCurrency !== currency) throw new MappingError('MIXED_CURRENCIES', `order_items[${i}] in ${lineCurrency}, order in ${currency}`);
      return {
        lineId: oi.item.variation_id ? `${oi.item.id}-${oi.item.variation_id}` : oi.item.id,
        listingId: oi.item.id,
        sku: oi.item.seller_sku ?? null,
        title: oi.item.title ?? null,
        quantity: oi.quantity,
        unitPrice: exact(parseDecimal, oi.unit_price, currency, `order_items[${i}].unit_price`),
      };
    });
    const itemsAmount = sum(currency, lines.map((l) => money(l.unitPrice.amountMinor * l.quantity, currency)));
    const approved = (order.payments ?? []).filter((p) => p.status === 'approved');
    const shippingAmount = sum(currency, approved.map((p, i) => exact(parseDecimal, p.shipping_cost ?? 0, currency, `payments[${i}].shipping_cost`)));
    const address = shipment ? mlAddress(shipment) : { shipTo: null, shipToIssue: order.shipping?.id ? 'SHIPMENT_UNAVAILABLE' : 'NO_SHIPMENT' };
    return {
      kind: 'paid',
      order: {
        marketplace: 'MERCADOLIBRE',
        externalOrderId: String(order.id),
        marketplaceAccountId: accountId,
        lines,
        buyer: { externalId: order.buyer?.id !== undefined ? String(order.buyer.id) : null, name: order.buyer?.nickname ?? null, email: null },
        ...address,
        itemsAmount,
        shippingAmount,
        saleAmount: add(itemsAmount, shippingAmount),
        marketplaceFee: marketplaceFee(order, approved, currency),
        paymentFee: null,
        paymentReference: approved[0] ? String(approved[0].id) : null,
        receivedAt,
      },
    };
  } catch (error) {
    if (error instanceof MappingError) return { kind: 'unmappable', reason: error.reason, detail: error.message };
    throw error;
  }
}

/** payments[].marketplace_fee when MercadoLibre reports it, else the items' sale_fee (per unit) × quantity; else null. */
function marketplaceFee(order: MlOrderResource, approved: NonNullable<MlOrderResource['payments']>, currency: string): Money | null {
  const fromPayments = approved.filter((p) => typeof p.marketplace_fee === 'number');
  if (fromPayments.length > 0) return sum(currency, fromPayments.map((p, i) => exact(parseDecimal, p.marketplace_fee!, currency, `payments[${i}].marketplace_fee`)));
  const fromItems = order.order_items.filter((oi) => typeof oi.sale_fee === 'number');
  if (fromItems.length === 0) return null;
  return sum(currency, fromItems.map((oi, i) => {
    const unit = exact(parseDecimal, oi.sale_fee!, currency, `order_items[${i}].sale_fee`);
    return money(unit.amountMinor * oi.quantity, currency);
  }));
}

function mlAddress(shipment: MlShipmentResource) {
  const a = shipment.receiver_address;
  if (!a) return { shipTo: null, shipToIssue: 'MISSING_ADDRESS' };
  const street = a.address_line ?? [a.street_name, a.street_number].filter(Boolean).join(' ');
  return completeAddress({
    fullName: a.receiver_name,
    line1: street,
    line2: a.comment,
    city: a.city?.name,
    region: a.state?.name,
    postalCode: a.zip_code,
    // The country's id is the ISO code; its name ("Chile") is never stored as the country (lesson 11).
    countryCode: a.country?.id,
    phone: a.receiver_phone,
  });
}
