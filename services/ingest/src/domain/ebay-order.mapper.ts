import { add, formatDecimal, money, parseDecimal, subtract, sum, type Money, type OrderLine } from '@postsale/contracts';
import { completeAddress } from './address';
import { exact, MappingError, type MarketplaceOrderVerdict } from './marketplace-order';

/** The parts of eBay's Fulfillment API order this service reads (values are strings; ship-to is an ARRAY). */
export interface EbayFulfillmentOrder {
  orderId: string;
  creationDate?: string;
  orderPaymentStatus?: string;
  cancelStatus?: { cancelState?: string };
  buyer?: { username?: string };
  pricingSummary?: {
    priceSubtotal?: EbayMoney; priceDiscount?: EbayMoney; deliveryCost?: EbayMoney; deliveryDiscount?: EbayMoney;
    adjustment?: EbayMoney; tax?: EbayMoney; total?: EbayMoney;
  };
  lastModifiedDate?: string;
  paymentSummary?: {
    payments?: Array<{ paymentReferenceId?: string }>;
    refunds?: Array<{ refundId?: string; refundStatus?: string; amount?: EbayMoney; refundDate?: string }>;
  };
  fulfillmentStartInstructions?: Array<{
    shippingStep?: {
      shipTo?: {
        fullName?: string;
        contactAddress?: { addressLine1?: string; addressLine2?: string; city?: string; stateOrProvince?: string; postalCode?: string; countryCode?: string };
        primaryPhone?: { phoneNumber?: string };
        email?: string;
      };
    };
  }>;
  lineItems?: Array<{ lineItemId: string; legacyItemId?: string; sku?: string; title?: string; quantity: number; lineItemCost?: EbayMoney }>;
  totalMarketplaceFee?: EbayMoney;
}
interface EbayMoney {
  value?: string;
  currency?: string;
}

const m = (v: EbayMoney | undefined, field: string): Money => exact(parseDecimal, v?.value, v?.currency, field);
const optional = (v: EbayMoney | undefined, field: string, currency: string): Money => (v?.value !== undefined ? m(v, field) : money(0, currency));
/** Discounts are written negative by eBay; accept either sign and take them off. */
const discountOf = (v: EbayMoney | undefined, field: string, currency: string): Money => {
  const d = optional(v, field, currency);
  return money(Math.abs(d.amountMinor), d.currency);
};

export function mapEbayOrder(order: EbayFulfillmentOrder, accountId: string, receivedAt: number): MarketplaceOrderVerdict {
  try {
    if (order.cancelStatus?.cancelState === 'CANCELED') return { kind: 'cancelled', reason: 'CANCELED_ON_EBAY', at: receivedAt };
    if (order.orderPaymentStatus !== 'PAID') return { kind: 'not-paid', status: order.orderPaymentStatus ?? 'UNKNOWN' };
    const total = m(order.pricingSummary?.total, 'pricingSummary.total');
    const currency = total.currency;
    const lineItems = order.lineItems ?? [];
    if (lineItems.length === 0) throw new MappingError('NO_LINE_ITEMS', 'order has no line items');
    const lines: OrderLine[] = lineItems.map((li, i) => {
      const cost = m(li.lineItemCost, `lineItems[${i}].lineItemCost`);
      if (!Number.isInteger(li.quantity) || li.quantity < 1) throw new MappingError('INVALID_QUANTITY', `lineItems[${i}].quantity`);
      // The contract carries a unit price; a line cost that does not divide evenly is refused rather than rounded.
      if (cost.amountMinor % li.quantity !== 0) throw new MappingError('LINE_PRICE_NOT_DIVISIBLE', `lineItems[${i}]: ${li.lineItemCost?.value} / ${li.quantity}`);
      return {
        lineId: li.lineItemId,
        listingId: li.legacyItemId ?? li.lineItemId,
        sku: li.sku ?? null,
        title: li.title ?? null,
        quantity: li.quantity,
        unitPrice: money(cost.amountMinor / li.quantity, cost.currency),
      };
    });
    const itemsAmount = sum(currency, lines.map((l) => money(l.unitPrice.amountMinor * l.quantity, l.unitPrice.currency)));
    // What the buyer paid is pricingSummary.total, AFTER discounts (external-apis.md "Corrections"); never the sum of
    // list prices. The parts must agree with it: line costs = priceSubtotal, and subtotal − priceDiscount +
    // deliveryCost − deliveryDiscount (+ adjustment, + tax when eBay lists it) = total. Anything else is parked
    // with both numbers — the order is never booked on the higher one.
    const ps = order.pricingSummary ?? {};
    const subtotal = ps.priceSubtotal?.value !== undefined ? m(ps.priceSubtotal, 'pricingSummary.priceSubtotal') : itemsAmount;
    const discount = discountOf(ps.priceDiscount, 'pricingSummary.priceDiscount', currency);
    const deliveryDiscount = discountOf(ps.deliveryDiscount, 'pricingSummary.deliveryDiscount', currency);
    const shippingAmount = subtract(optional(ps.deliveryCost, 'pricingSummary.deliveryCost', currency), deliveryDiscount);
    const expected = add(add(subtract(subtotal, discount), shippingAmount), add(optional(ps.adjustment, 'pricingSummary.adjustment', currency), optional(ps.tax, 'pricingSummary.tax', currency)));
    if (subtotal.amountMinor !== itemsAmount.amountMinor || expected.amountMinor !== total.amountMinor) {
      throw new MappingError('EBAY_AMOUNTS_DISAGREE',
        `line items ${formatDecimal(itemsAmount)} ${currency} (priceSubtotal ${formatDecimal(subtotal)}) − discounts ${formatDecimal(add(discount, deliveryDiscount))} + delivery gives ${formatDecimal(expected)} ${currency}, `
        + `but pricingSummary.total is ${formatDecimal(total)} ${currency}`);
    }
    if (total.amountMinor <= 0) throw new MappingError('EBAY_AMOUNTS_DISAGREE', `pricingSummary.total is ${formatDecimal(total)} ${currency}`);
    // Ship-to is an array of fulfillment instructions (lesson 10); the first SHIP_TO step is the destination.
    const shipTo = order.fulfillmentStartInstructions?.find((f) => f.shippingStep?.shipTo)?.shippingStep?.shipTo;
    const address = completeAddress(
      shipTo && {
        fullName: shipTo.fullName,
        line1: shipTo.contactAddress?.addressLine1,
        line2: shipTo.contactAddress?.addressLine2,
        city: shipTo.contactAddress?.city,
        region: shipTo.contactAddress?.stateOrProvince,
        postalCode: shipTo.contactAddress?.postalCode,
        countryCode: shipTo.contactAddress?.countryCode,
        phone: shipTo.primaryPhone?.phoneNumber,
      },
    );
    return {
      kind: 'paid',
      order: {
        marketplace: 'EBAY',
        externalOrderId: order.orderId,
        marketplaceAccountId: accountId,
        lines,
        buyer: { externalId: order.buyer?.username ?? null, name: shipTo?.fullName ?? null, email: shipTo?.email ?? null },
        ...address,
        itemsAmount,
        shippingAmount,
        // itemsAmount = line items at their listed prices, saleAmount = what the buyer paid after discounts
        saleAmount: total,
        marketplaceFee: order.totalMarketplaceFee?.value ? m(order.totalMarketplaceFee, 'totalMarketplaceFee') : null,
        paymentFee: null,
        paymentReference: order.paymentSummary?.payments?.[0]?.paymentReferenceId ?? null,
        receivedAt,
      },
    };
  } catch (error) {
    if (error instanceof MappingError) return { kind: 'unmappable', reason: error.reason, detail: error.message };
    throw error;
  }
}
