// Generated from packages/contracts/schemas/*.avsc by scripts/generate-types.ts. Do not edit by hand.

/** Fields every event carries, whatever its type. */
export interface EventEnvelope {
  eventId: string;
  orderId: string;
  sellerId: string;
  /** epoch milliseconds */
  occurredAt: number;
  causationId: string | null;
}

export interface Money {
  /** integer minor units, never a float */
  amountMinor: number;
  /** ISO 4217 code, e.g. USD, CLP */
  currency: string;
}
export type PurchaseChannel = 'API' | 'BROWSER' | 'MANUAL';
export interface PurchaseCompleted {
  /** e.g. ALIEXPRESS */
  supplier: string;
  supplierOrderId: string;
  /** what the supplier actually charged, in the currency it charged */
  supplierCost: Money;
  channel: PurchaseChannel;
  purchasedAt: number;
}
export interface PurchaseFailed {
  /** ours, e.g. PRICE_ABOVE_MAX, UNMAPPED_LISTING, SUPPLIER_REJECTED */
  reasonCode: string;
  /** the supplier's own code, e.g. B_DROPSHIPPER_DELIVERY_ADDRESS_VALIDATE_FAIL */
  supplierErrorCode: null | string;
  message: null | string;
  needsReview: boolean;
  failedAt: number;
}
export interface OrderShipped {
  carrier: string;
  trackingNumber: string;
  shippedAt: number;
}
export interface OrderDelivered {
  deliveredAt: number;
}
export type Marketplace = 'EBAY' | 'MERCADOLIBRE' | 'PAYPAL_STOREFRONT';
export interface OrderLine {
  /** the marketplace's line item id */
  lineId: string;
  listingId: string;
  sku: null | string;
  title: null | string;
  quantity: number;
  unitPrice: Money;
}
export interface Buyer {
  externalId: null | string;
  name: null | string;
  email: null | string;
}
export interface Address {
  fullName: string;
  line1: string;
  line2: null | string;
  city: string;
  /** state / province */
  region: null | string;
  postalCode: null | string;
  /** ISO 3166-1 alpha-2 */
  countryCode: string;
  phone: null | string;
}
export interface SealedPersonal {
  /** random id of the data subject's key (a buyer of a marketplace, or this order when it has no buyer id); names no person */
  subjectId: string;
  /** v1:<iv>:<tag>:<data> (base64 parts); additional authenticated data: orderId and subjectId */
  ciphertext: string;
}
export interface OrderReceived {
  marketplace: Marketplace;
  /** the marketplace's own order id (MercadoLibre: pack id for carts) */
  externalOrderId: string;
  /** eBay username, MercadoLibre user_id, PayPal merchant/storefront id */
  marketplaceAccountId: string;
  lines: Array<OrderLine>;
  buyer: null | Buyer;
  /** null when the marketplace's address is incomplete (fulfillment sends it to review) */
  shipTo: null | Address;
  /** why shipTo is null, e.g. MISSING_CITY */
  shipToIssue: null | string;
  /** sum of line items */
  itemsAmount: Money;
  /** shipping charged to the buyer */
  shippingAmount: Money;
  /** what the buyer paid: items + shipping */
  saleAmount: Money;
  /** the marketplace's own fee when its data says it */
  marketplaceFee: null | Money;
  /** payment processor fee (PayPal fee from the capture) */
  paymentFee: null | Money;
  /** PayPal capture id / MercadoLibre payment id */
  paymentReference: null | string;
  receivedAt: number;
  /** null in events from before crypto-shredding (their buyer and shipTo are in clear) */
  sealedPersonal?: null | SealedPersonal;
}
export interface OrderCancelled {
  marketplace: Marketplace;
  externalOrderId: string;
  reason: string;
  cancelledAt: number;
}
export interface OrderRefunded {
  marketplace: Marketplace;
  externalOrderId: string;
  /** the marketplace's refund id; one event per refund */
  refundId: string;
  amount: Money;
  full: boolean;
  reason: null | string;
  refundedAt: number;
}
export interface OrderPersonalDataErased {
  marketplace: Marketplace;
  externalOrderId: string;
  /** EBAY_ACCOUNT_DELETION | ADMIN | RETENTION */
  cause: string;
  erasedAt: number;
}
export type PayoutRecipient = 'PLATFORM' | 'SELLER';
export interface PayoutSent {
  payoutId: string;
  recipient: PayoutRecipient;
  amount: Money;
  senderItemId: string;
  payoutBatchId: string;
  payoutItemId: string;
  sentAt: number;
  /** what was owed, in the sale's currency, when the payment was converted into another payout currency (amount is what was paid); null when paid in the sale's currency */
  owedAmount: null | Money;
  /** the exact decimal rate used (units of amount.currency per one unit of owedAmount.currency), rounded down in amount.currency; null without conversion */
  fxRate: null | string;
  /** the date (YYYY-MM-DD) of the rate used: the most recent rate dated on or before the sale's day; null without conversion */
  fxRateDate: null | string;
}
export interface PayoutFailed {
  payoutId: string;
  recipient: PayoutRecipient;
  amount: Money;
  /** PayPal item status, e.g. FAILED, BLOCKED */
  status: string;
  reason: string;
  /** the amount is still owed and may be retried */
  owedAgain: boolean;
  failedAt: number;
}
export interface PayoutReturned {
  payoutId: string;
  recipient: PayoutRecipient;
  amount: Money;
  /** RETURNED, UNCLAIMED, REFUNDED, REVERSED */
  status: string;
  reason: string;
  returnedAt: number;
}
export interface FxConversion {
  fromCurrency: string;
  toCurrency: string;
  /** exact decimal string: units of toCurrency per unit of fromCurrency */
  rate: string;
  /** ISO date of the rate table entry used */
  rateDate: string;
  source: string;
}
export interface SaleRecorded {
  saleId: string;
  saleAmount: Money;
  marketplaceFee: Money;
  paymentFee: Money;
  /** converted to the sale currency when the supplier charged another */
  supplierCost: Money;
  /** as the supplier charged it */
  supplierCostCharged: Money;
  fx: null | FxConversion;
  /** may be negative */
  grossProfit: Money;
  /** platform commission rate on gross profit, basis points */
  commissionRateBps: number;
  platformCommission: Money;
  sellerNetProfit: Money;
  /** what the seller lost when gross profit is negative; else zero */
  loss: Money;
  isLoss: boolean;
  recordedAt: number;
}
export type ReversalKind = 'CANCELLATION' | 'FULL_REFUND' | 'PARTIAL_REFUND';
export interface SaleReversed {
  saleId: string;
  reversalId: string;
  kind: ReversalKind;
  refundedAmount: Money;
  /** platform commission taken back */
  commissionReversed: Money;
  /** seller's net profit taken back (a clawback if already paid) */
  sellerNetReversed: Money;
  reversedAt: number;
}
export interface SubjectKey {
  /** random id, also the Kafka key; names no person */
  subjectId: string;
  /** the 32-byte data key sealed with the platform key-encryption key (v1:<kekId>:<iv>:<tag>:<data>); null once erased */
  sealedKey: null | string;
  /** set when the subject's key was erased */
  erasedAt: null | number;
  occurredAt: number;
}

/** fulfillment.v1.avsc: What fulfillment did for an order at the supplier. Topic postsale.fulfillment.v1, key orderId. */
export type FulfillmentEvent =
  | (EventEnvelope & { type: 'PurchaseCompleted'; payload: PurchaseCompleted })
  | (EventEnvelope & { type: 'PurchaseFailed'; payload: PurchaseFailed })
  | (EventEnvelope & { type: 'OrderShipped'; payload: OrderShipped })
  | (EventEnvelope & { type: 'OrderDelivered'; payload: OrderDelivered });
export type FulfillmentEventType = FulfillmentEvent['type'];
/** orders.v1.avsc: Everything ingest says about a marketplace order. Topic postsale.orders.v1, key orderId. */
export type OrderEvent =
  | (EventEnvelope & { type: 'OrderReceived'; payload: OrderReceived })
  | (EventEnvelope & { type: 'OrderCancelled'; payload: OrderCancelled })
  | (EventEnvelope & { type: 'OrderRefunded'; payload: OrderRefunded })
  | (EventEnvelope & { type: 'OrderPersonalDataErased'; payload: OrderPersonalDataErased });
export type OrderEventType = OrderEvent['type'];
/** payouts.v1.avsc: Money that left (or came back) through PayPal Payouts. Topic postsale.payouts.v1, key orderId. */
export type PayoutEvent =
  | (EventEnvelope & { type: 'PayoutSent'; payload: PayoutSent })
  | (EventEnvelope & { type: 'PayoutFailed'; payload: PayoutFailed })
  | (EventEnvelope & { type: 'PayoutReturned'; payload: PayoutReturned });
export type PayoutEventType = PayoutEvent['type'];
/** sales.v1.avsc: The ledger's verdict on an order. Topic postsale.sales.v1, key orderId. */
export type SaleEvent =
  | (EventEnvelope & { type: 'SaleRecorded'; payload: SaleRecorded })
  | (EventEnvelope & { type: 'SaleReversed'; payload: SaleReversed });
export type SaleEventType = SaleEvent['type'];
