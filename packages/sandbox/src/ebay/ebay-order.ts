import { applyRate, currencyDecimals, fromMinorUnits, randomDigits, toMinorUnits } from '../fake-utils';

/**
 * The Fulfillment API order (`GET /sell/fulfillment/v1/order/{orderId}`) in the shape eBay returns it: money values
 * are `{value: string, currency}`, `fulfillmentStartInstructions` is an array, quantities are integers.
 *
 * As real orders are (external-apis.md "Corrections"; eBay's event-notification-nodejs-sdk and getOrder samples):
 * - amount strings are NOT always two decimals: `"4085.0"`, `"40.8"`, `"0.0"` (default; `twoDecimalAmounts` for the
 *   old form);
 * - `paymentSummary.totalDueSeller` and `payments[].amount` are NET of eBay's fees;
 * - the buyer's price after discounts is in `pricingSummary` (`priceSubtotal`, `priceDiscount` as a negative value,
 *   `deliveryCost`, `total`); line costs stay before the discount, the line's `appliedPromotions` carries it;
 * - `cancelStatus` and `paymentSummary.refunds[]` change after the order was confirmed (see the fake's
 *   cancelOrder / refundOrder).
 */
export interface EbayAmount {
  value: string;
  currency: string;
}

export interface EbayAddress {
  addressLine1: string;
  addressLine2?: string;
  city: string;
  stateOrProvince?: string;
  postalCode: string;
  countryCode: string;
}

export interface EbayShipTo {
  fullName: string;
  contactAddress: EbayAddress;
  primaryPhone: { phoneNumber: string };
  email: string;
}

export interface EbayLineItem {
  lineItemId: string;
  legacyItemId: string;
  legacyVariationId?: string;
  sku?: string;
  title: string;
  lineItemCost: EbayAmount;
  quantity: number;
  soldFormat: 'FIXED_PRICE' | 'AUCTION';
  listingMarketplaceId: string;
  purchaseMarketplaceId: string;
  lineItemFulfillmentStatus: 'NOT_STARTED' | 'IN_PROGRESS' | 'FULFILLED';
  total: EbayAmount;
  deliveryCost: { shippingCost: EbayAmount };
  appliedPromotions: unknown[];
  taxes: unknown[];
  properties: { buyerProtection: boolean };
  lineItemFulfillmentInstructions: {
    minEstimatedDeliveryDate: string;
    maxEstimatedDeliveryDate: string;
    shipByDate: string;
    guaranteedDelivery: boolean;
  };
}

export interface EbayOrder {
  orderId: string;
  legacyOrderId: string;
  creationDate: string;
  lastModifiedDate: string;
  orderFulfillmentStatus: 'NOT_STARTED' | 'IN_PROGRESS' | 'FULFILLED';
  orderPaymentStatus: 'PAID' | 'PENDING' | 'FAILED' | 'FULLY_REFUNDED' | 'PARTIALLY_REFUNDED';
  /** the seller's eBay username; the fake uses it to decide which seller token may read the order */
  sellerId: string;
  buyer: { username: string; taxAddress?: { countryCode: string; postalCode?: string } };
  pricingSummary: { priceSubtotal: EbayAmount; priceDiscount?: EbayAmount; deliveryCost: EbayAmount; total: EbayAmount };
  cancelStatus: { cancelState: 'NONE_REQUESTED' | 'IN_PROGRESS' | 'CANCELED'; cancelRequests: unknown[] };
  paymentSummary: {
    totalDueSeller: EbayAmount;
    refunds: EbayRefund[];
    payments: Array<{
      paymentMethod: string;
      paymentReferenceId: string;
      paymentDate: string;
      amount: EbayAmount;
      paymentStatus: string;
    }>;
  };
  fulfillmentStartInstructions: Array<{
    fulfillmentInstructionsType: 'SHIP_TO';
    minEstimatedDeliveryDate: string;
    maxEstimatedDeliveryDate: string;
    ebaySupportedFulfillment: boolean;
    shippingStep: { shipTo: EbayShipTo; shippingCarrierCode: string; shippingServiceCode: string };
  }>;
  fulfillmentHrefs: string[];
  lineItems: EbayLineItem[];
  salesRecordReference: string;
  totalFeeBasisAmount: EbayAmount;
  totalMarketplaceFee: EbayAmount;
}

export interface EbayRefund {
  refundId: string;
  refundStatus: 'FAILED' | 'PENDING' | 'REFUNDED';
  amount: EbayAmount;
  refundDate: string;
  refundReferenceId: string;
}

export interface EbayOrderLineInput {
  lineItemId?: string;
  legacyItemId?: string;
  sku?: string;
  title: string;
  quantity: number;
  /** price of one unit as eBay writes it, e.g. "12.50" */
  unitValue: string;
}

export interface BuildEbayOrderInput {
  orderId?: string;
  /** eBay username of the seller owning the order (stored as `sellerId`, as eBay does) */
  sellerUsername?: string;
  buyerUsername?: string;
  lineItems: EbayOrderLineInput[];
  currency?: string;
  marketplaceId?: string;
  shipTo?: Partial<Omit<EbayShipTo, 'contactAddress'>> & { contactAddress?: Partial<EbayAddress> };
  /** total shipping charged to the buyer, e.g. "4.99"; "0.00" by default */
  deliveryCost?: string;
  /** final value fee rate used for `totalMarketplaceFee`; 13.25 % by default (eBay's common category rate) */
  marketplaceFeeRate?: number;
  orderPaymentStatus?: EbayOrder['orderPaymentStatus'];
  creationDate?: Date;
  /** a seller discount on the order, e.g. "5.00": `pricingSummary.priceDiscount` -5.0 and a lower total */
  discount?: string;
  /** write every amount with exactly the currency's decimals ("40.80") instead of eBay's real strings ("40.8") */
  twoDecimalAmounts?: boolean;
}

/** eBay order ids since 2020 look like `12-34567-89012`. */
export function newEbayOrderId(): string {
  return `${randomDigits(2)}-${randomDigits(5)}-${randomDigits(5)}`;
}

let twoDecimals = false;

/** eBay's amount strings: trailing zeros dropped but at least one decimal ("4085.0", "40.8", "0.0", "-5.0"). */
export function ebayValue(minor: bigint, currency: string): string {
  const plain = fromMinorUnits(minor, currencyDecimals(currency));
  if (twoDecimals) return plain;
  const [whole, fraction = ''] = plain.split('.');
  const trimmed = fraction.replace(/0+$/, '');
  return `${whole}.${trimmed || '0'}`;
}

function amount(minor: bigint, currency: string): EbayAmount {
  return { value: ebayValue(minor, currency), currency };
}

function minorOf(value: string, currency: string): bigint {
  // eBay strings may carry fewer (or more, zero) decimals than the currency: "4085.0", "40.8"
  const decimals = currencyDecimals(currency);
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value);
  const fraction = (match?.[3] ?? '').replace(/0+$/, '');
  const normal = match && fraction.length <= decimals ? `${match[1]}${match[2]}${decimals > 0 ? `.${fraction.padEnd(decimals, '0')}` : ''}` : value;
  const minor = toMinorUnits(normal, decimals);
  if (minor === undefined) throw new Error(`buildEbayOrder: "${value}" is not a ${currency} amount`);
  return minor;
}

const DEFAULT_SHIP_TO: EbayShipTo = {
  fullName: 'Jane Buyer',
  contactAddress: {
    addressLine1: '2145 Hamilton Ave',
    city: 'San Jose',
    stateOrProvince: 'CA',
    postalCode: '95125',
    countryCode: 'US',
  },
  primaryPhone: { phoneNumber: '4085551234' },
  email: 'a1b2c3d4e5f6@members.ebay.com',
};

function days(from: Date, n: number): string {
  return new Date(from.getTime() + n * 86_400_000).toISOString();
}

/** Splits the order's delivery cost over its lines (remainder on the first line) like eBay's per-line shippingCost. */
function splitDelivery(totalMinor: bigint, lines: number): bigint[] {
  const share = totalMinor / BigInt(lines);
  return Array.from({ length: lines }, (_, i) => (i === 0 ? share + (totalMinor - share * BigInt(lines)) : share));
}

/** A realistic paid eBay order, so tests state only what they care about. */
export function buildEbayOrder(input: BuildEbayOrderInput): EbayOrder {
  if (input.lineItems.length === 0) throw new Error('buildEbayOrder: at least one line item');
  twoDecimals = input.twoDecimalAmounts ?? false;
  try {
    return buildEbayOrderWith(input);
  } finally {
    twoDecimals = false;
  }
}

function buildEbayOrderWith(input: BuildEbayOrderInput): EbayOrder {
  const currency = input.currency ?? 'USD';
  const marketplace = input.marketplaceId ?? 'EBAY_US';
  const created = input.creationDate ?? new Date();
  const deliveryMinor = minorOf(input.deliveryCost ?? fromMinorUnits(0n, currencyDecimals(currency)), currency);
  const shares = splitDelivery(deliveryMinor, input.lineItems.length);
  const lineItems = input.lineItems.map((line, i) => buildLine(line, currency, marketplace, created, shares[i] ?? 0n));
  const subtotal = lineItems.reduce((sum, l) => sum + minorOf(l.lineItemCost.value, currency), 0n);
  const discount = input.discount ? minorOf(input.discount, currency) : 0n;
  if (discount > 0n && lineItems[0]) {
    lineItems[0].appliedPromotions = [{ promotionId: randomDigits(10), description: 'Seller discount', discountAmount: amount(discount, currency) }];
    lineItems[0].total = amount(minorOf(lineItems[0].total.value, currency) - discount, currency);
  }
  const total = subtotal - discount + deliveryMinor;
  const totalValue = fromMinorUnits(total, currencyDecimals(currency));
  const fee = applyRate(totalValue, input.marketplaceFeeRate ?? 0.1325, currency);
  const feeMinor = minorOf(fee, currency);
  const shipTo = mergeShipTo(input.shipTo);
  const orderId = input.orderId ?? newEbayOrderId();
  return {
    orderId,
    legacyOrderId: orderId,
    creationDate: created.toISOString(),
    lastModifiedDate: created.toISOString(),
    orderFulfillmentStatus: 'NOT_STARTED',
    orderPaymentStatus: input.orderPaymentStatus ?? 'PAID',
    sellerId: input.sellerUsername ?? 'sandbox_seller',
    buyer: { username: input.buyerUsername ?? 'sandbox_buyer', taxAddress: { countryCode: shipTo.contactAddress.countryCode } },
    pricingSummary: {
      priceSubtotal: amount(subtotal, currency),
      ...(discount > 0n ? { priceDiscount: amount(-discount, currency) } : {}),
      deliveryCost: amount(deliveryMinor, currency),
      total: amount(total, currency),
    },
    cancelStatus: { cancelState: 'NONE_REQUESTED', cancelRequests: [] },
    paymentSummary: {
      // Corrections: what eBay pays the seller, NET of its fees (not what the buyer paid)
      totalDueSeller: amount(total - feeMinor, currency),
      refunds: [],
      payments: [
        {
          paymentMethod: 'EBAY',
          paymentReferenceId: randomDigits(16),
          paymentDate: created.toISOString(),
          amount: amount(total - feeMinor, currency),
          paymentStatus: 'PAID',
        },
      ],
    },
    fulfillmentStartInstructions: [
      {
        fulfillmentInstructionsType: 'SHIP_TO',
        minEstimatedDeliveryDate: days(created, 5),
        maxEstimatedDeliveryDate: days(created, 12),
        ebaySupportedFulfillment: false,
        shippingStep: { shipTo, shippingCarrierCode: 'USPS', shippingServiceCode: 'USPSPriority' },
      },
    ],
    fulfillmentHrefs: [],
    lineItems,
    salesRecordReference: randomDigits(4),
    totalFeeBasisAmount: amount(total, currency),
    totalMarketplaceFee: amount(feeMinor, currency),
  };
}

/**
 * A refund after confirmation (no notification topic exists for it: a client finds it by re-reading the order):
 * `paymentSummary.refunds[]` gains an entry and `orderPaymentStatus` becomes PARTIALLY_ or FULLY_REFUNDED against
 * what the buyer paid (`pricingSummary.total`).
 */
export function applyEbayRefund(order: EbayOrder, value: string, status: EbayRefund['refundStatus'] = 'REFUNDED', at = new Date()): void {
  const currency = order.pricingSummary.total.currency;
  const minor = minorOf(value, currency);
  order.paymentSummary.refunds.push({
    refundId: randomDigits(12), refundStatus: status, amount: amount(minor, currency), refundDate: at.toISOString(), refundReferenceId: randomDigits(16),
  });
  const refunded = order.paymentSummary.refunds.filter((r) => r.refundStatus === 'REFUNDED').reduce((s, r) => s + minorOf(r.amount.value, currency), 0n);
  const total = minorOf(order.pricingSummary.total.value, currency);
  if (refunded > 0n) order.orderPaymentStatus = refunded >= total ? 'FULLY_REFUNDED' : 'PARTIALLY_REFUNDED';
  order.lastModifiedDate = at.toISOString();
}

/** A cancellation after confirmation: cancelStatus CANCELED and the whole payment refunded. */
export function applyEbayCancellation(order: EbayOrder, at = new Date()): void {
  order.cancelStatus = { cancelState: 'CANCELED', cancelRequests: [{ cancelReason: 'BUYER_ASKED_CANCEL', cancelRequestedDate: at.toISOString(), cancelInitiator: 'BUYER', cancelRequestState: 'COMPLETED' }] };
  const currency = order.pricingSummary.total.currency;
  const done = order.paymentSummary.refunds.filter((r) => r.refundStatus === 'REFUNDED').reduce((s, r) => s + minorOf(r.amount.value, currency), 0n);
  const rest = minorOf(order.pricingSummary.total.value, currency) - done;
  if (rest > 0n) applyEbayRefund(order, fromMinorUnits(rest, currencyDecimals(currency)), 'REFUNDED', at);
  order.lastModifiedDate = at.toISOString();
}

function buildLine(line: EbayOrderLineInput, currency: string, marketplace: string, created: Date, shipping: bigint): EbayLineItem {
  const cost = minorOf(line.unitValue, currency) * BigInt(line.quantity);
  return {
    lineItemId: line.lineItemId ?? randomDigits(14),
    legacyItemId: line.legacyItemId ?? randomDigits(12),
    ...(line.sku === undefined ? {} : { sku: line.sku }),
    title: line.title,
    lineItemCost: amount(cost, currency),
    quantity: line.quantity,
    soldFormat: 'FIXED_PRICE',
    listingMarketplaceId: marketplace,
    purchaseMarketplaceId: marketplace,
    lineItemFulfillmentStatus: 'NOT_STARTED',
    total: amount(cost + shipping, currency),
    deliveryCost: { shippingCost: amount(shipping, currency) },
    appliedPromotions: [],
    taxes: [],
    properties: { buyerProtection: true },
    lineItemFulfillmentInstructions: {
      minEstimatedDeliveryDate: days(created, 5),
      maxEstimatedDeliveryDate: days(created, 12),
      shipByDate: days(created, 3),
      guaranteedDelivery: false,
    },
  };
}

function mergeShipTo(shipTo: BuildEbayOrderInput['shipTo']): EbayShipTo {
  return {
    fullName: shipTo?.fullName ?? DEFAULT_SHIP_TO.fullName,
    contactAddress: { ...DEFAULT_SHIP_TO.contactAddress, ...shipTo?.contactAddress },
    primaryPhone: shipTo?.primaryPhone ?? DEFAULT_SHIP_TO.primaryPhone,
    email: shipTo?.email ?? DEFAULT_SHIP_TO.email,
  };
}
