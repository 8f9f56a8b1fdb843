import { randomDigits } from '../fake-utils';

/**
 * MercadoLibre `/orders/{id}` and `/shipments/{id}` resources in the shape the API returns them: amounts and ids are
 * JSON numbers (CLP has no decimals), dates carry the site's UTC offset, nullable fields are present as null.
 */
export type MlOrderStatus = 'confirmed' | 'payment_required' | 'payment_in_process' | 'partially_paid' | 'paid' | 'partially_refunded' | 'pending_cancel' | 'cancelled' | 'invalid';

export interface MlOrderItem {
  item: {
    id: string;
    title: string;
    category_id: string;
    variation_id: number | null;
    seller_custom_field: string | null;
    variation_attributes: Array<{ id: string; name: string; value_id: string | null; value_name: string }>;
    warranty: string | null;
    condition: 'new' | 'used';
    seller_sku: string | null;
  };
  quantity: number;
  requested_quantity: { value: number; measure: 'unit' };
  unit_price: number;
  full_unit_price: number;
  currency_id: string;
  sale_fee: number;
  listing_type_id: string;
  manufacturing_days: number | null;
}

export interface MlPayment {
  id: number;
  order_id: number;
  payer_id: number;
  collector: { id: number };
  currency_id: string;
  status: 'approved' | 'refunded' | 'charged_back' | 'pending' | 'rejected' | 'cancelled';
  status_detail: string;
  transaction_amount: number;
  transaction_amount_refunded: number;
  shipping_cost: number;
  total_paid_amount: number;
  marketplace_fee: number;
  coupon_amount: number;
  taxes_amount: number;
  overpaid_amount: number;
  installments: number;
  installment_amount: number | null;
  payment_method_id: string;
  payment_type: string;
  operation_type: 'regular_payment';
  reason: string;
  site_id: string;
  date_approved: string | null;
  date_created: string;
  date_last_modified: string;
  available_actions: string[];
}

export interface MlOrder {
  id: number;
  date_created: string;
  date_closed: string | null;
  last_updated: string;
  expiration_date: string;
  status: MlOrderStatus;
  status_detail: string | null;
  order_items: MlOrderItem[];
  total_amount: number;
  paid_amount: number;
  currency_id: string;
  buyer: { id: number; nickname: string };
  seller: { id: number };
  payments: MlPayment[];
  shipping: { id: number | null };
  pack_id: number | null;
  tags: string[];
  feedback: { buyer: null; seller: null };
  context: { channel: 'marketplace'; site: string; flows: string[] };
  cancel_detail: null | { group: string; code: string; description: string; requested_by: string; date: string; application_id: null };
  fulfilled: boolean | null;
  mediations: unknown[];
  taxes: { amount: number | null; currency_id: string | null; id: string | null };
  coupon: { id: string | null; amount: number };
  comment: string | null;
}

export interface MlOrderItemInput {
  id: string;
  title: string;
  variationId?: number;
  sellerSku?: string;
  quantity: number;
  unitPrice: number;
}

export interface BuildMlOrderInput {
  id?: number;
  sellerId: number;
  status?: MlOrderStatus;
  items: MlOrderItemInput[];
  currencyId?: string;
  packId?: number;
  shipmentId?: number;
  buyer?: { id: number; nickname: string };
  /** MercadoLibre's sale fee (cargo por venta) as a fraction of the line; 13 % by default */
  saleFeeRate?: number;
  dateCreated?: Date;
  siteId?: string;
}

const SITE_BY_CURRENCY: Record<string, string> = { CLP: 'MLC', ARS: 'MLA', MXN: 'MLM', BRL: 'MLB', COP: 'MCO', UYU: 'MLU', PEN: 'MPE', USD: 'MLC' };
const OFFSET_BY_SITE: Record<string, string> = { MLC: '-04:00', MLA: '-03:00', MLM: '-06:00', MLB: '-03:00', MCO: '-05:00', MLU: '-03:00', MPE: '-05:00' };

/** Rounds to the currency's precision: CLP/COP amounts are whole numbers, others have cents. */
export function roundMl(amount: number, currencyId: string): number {
  return ['CLP', 'COP'].includes(currencyId) ? Math.round(amount) : Math.round(amount * 100) / 100;
}

/** MercadoLibre writes local time with the site's offset, e.g. `2024-05-01T10:00:00.000-04:00`. */
export function mlDate(date: Date, siteId = 'MLC'): string {
  const offset = OFFSET_BY_SITE[siteId] ?? '-04:00';
  const sign = offset.startsWith('-') ? -1 : 1;
  const [h, m] = offset.slice(1).split(':').map(Number);
  const shifted = new Date(date.getTime() + sign * ((h ?? 0) * 60 + (m ?? 0)) * 60_000);
  return shifted.toISOString().replace('Z', offset);
}

function orderItem(input: MlOrderItemInput, currencyId: string, feeRate: number): MlOrderItem {
  return {
    item: {
      id: input.id,
      title: input.title,
      category_id: 'MLC1234',
      variation_id: input.variationId ?? null,
      seller_custom_field: null,
      variation_attributes: input.variationId ? [{ id: 'COLOR', name: 'Color', value_id: '52049', value_name: 'Negro' }] : [],
      warranty: 'Garantía del vendedor: 30 días',
      condition: 'new',
      seller_sku: input.sellerSku ?? null,
    },
    quantity: input.quantity,
    requested_quantity: { value: input.quantity, measure: 'unit' },
    unit_price: input.unitPrice,
    full_unit_price: input.unitPrice,
    currency_id: currencyId,
    sale_fee: roundMl(input.unitPrice * feeRate, currencyId),
    listing_type_id: 'gold_special',
    manufacturing_days: null,
  };
}

/** A realistic MercadoLibre order; by default paid in CLP with one approved payment. */
export function buildMlOrder(input: BuildMlOrderInput): MlOrder {
  if (input.items.length === 0) throw new Error('buildMlOrder: at least one item');
  const currencyId = input.currencyId ?? 'CLP';
  const siteId = input.siteId ?? SITE_BY_CURRENCY[currencyId] ?? 'MLC';
  const created = input.dateCreated ?? new Date();
  const id = input.id ?? Number(`2000${randomDigits(12)}`);
  const status = input.status ?? 'paid';
  const items = input.items.map((i) => orderItem(i, currencyId, input.saleFeeRate ?? 0.13));
  const total = roundMl(items.reduce((sum, i) => sum + i.unit_price * i.quantity, 0), currencyId);
  const fee = roundMl(items.reduce((sum, i) => sum + i.sale_fee * i.quantity, 0), currencyId);
  const buyer = input.buyer ?? { id: Number(randomDigits(9)), nickname: 'TESTBUYER' };
  const paid = status === 'paid' || status === 'partially_refunded';
  const order: MlOrder = {
    id,
    date_created: mlDate(created, siteId),
    date_closed: paid ? mlDate(created, siteId) : null,
    last_updated: mlDate(created, siteId),
    expiration_date: mlDate(new Date(created.getTime() + 21 * 86_400_000), siteId),
    status,
    status_detail: null,
    order_items: items,
    total_amount: total,
    paid_amount: paid ? total : 0,
    currency_id: currencyId,
    buyer,
    seller: { id: input.sellerId },
    payments: [],
    shipping: { id: input.shipmentId ?? null },
    pack_id: input.packId ?? null,
    tags: paid ? ['paid', 'not_delivered'] : ['not_delivered'],
    feedback: { buyer: null, seller: null },
    context: { channel: 'marketplace', site: siteId, flows: [] },
    cancel_detail: null,
    fulfilled: null,
    mediations: [],
    taxes: { amount: null, currency_id: null, id: null },
    coupon: { id: null, amount: 0 },
    comment: null,
  };
  order.payments = [payment(order, fee, created, siteId)];
  if (status === 'cancelled') applyCancellation(order, created);
  return order;
}

function payment(order: MlOrder, fee: number, created: Date, siteId: string): MlPayment {
  const approved = order.paid_amount > 0;
  return {
    id: Number(randomDigits(11)),
    order_id: order.id,
    payer_id: order.buyer.id,
    collector: { id: order.seller.id },
    currency_id: order.currency_id,
    status: approved ? 'approved' : 'pending',
    status_detail: approved ? 'accredited' : 'pending_waiting_payment',
    transaction_amount: order.total_amount,
    transaction_amount_refunded: 0,
    shipping_cost: 0,
    total_paid_amount: approved ? order.total_amount : 0,
    marketplace_fee: fee,
    coupon_amount: 0,
    taxes_amount: 0,
    overpaid_amount: 0,
    installments: 1,
    installment_amount: approved ? order.total_amount : null,
    payment_method_id: 'visa',
    payment_type: 'credit_card',
    operation_type: 'regular_payment',
    reason: order.order_items[0]?.item.title ?? '',
    site_id: siteId,
    date_approved: approved ? mlDate(created, siteId) : null,
    date_created: mlDate(created, siteId),
    date_last_modified: mlDate(created, siteId),
    available_actions: approved ? ['refund'] : [],
  };
}

/** A cancelled paid order: the payment is refunded and the cancellation detail filled, as MercadoLibre shows it. */
export function applyCancellation(order: MlOrder, at = new Date()): void {
  const siteId = order.context.site;
  order.status = 'cancelled';
  order.tags = ['not_delivered'];
  order.cancel_detail = {
    group: 'buyer',
    code: 'buyer_cancel_express',
    description: 'Cancelada por el comprador',
    requested_by: 'buyer',
    date: mlDate(at, siteId),
    application_id: null,
  };
  for (const p of order.payments) {
    if (p.status !== 'approved') continue;
    p.status = 'refunded';
    p.status_detail = 'refunded';
    p.transaction_amount_refunded = p.transaction_amount;
    p.available_actions = [];
    p.date_last_modified = mlDate(at, siteId);
  }
  order.last_updated = mlDate(at, siteId);
}

/**
 * Money returned on an order that STAYS `paid` (external-apis.md "Corrections", integrators quoting MercadoLibre's
 * docs): the refund shows only in `payments[].transaction_amount_refunded` (partial or full; a full one also turns the
 * payment `refunded`). The order's status does not change.
 */
export function applyRefund(order: MlOrder, amount: number, at = new Date()): void {
  const siteId = order.context.site;
  const p = order.payments.find((x) => x.status === 'approved');
  if (!p) throw new Error(`MercadoLibre fake: order ${order.id} has no approved payment to refund`);
  const refunded = p.transaction_amount_refunded + amount;
  if (amount <= 0 || refunded > p.transaction_amount) throw new Error(`MercadoLibre fake: cannot refund ${amount} of ${p.transaction_amount} (already ${p.transaction_amount_refunded})`);
  p.transaction_amount_refunded = refunded;
  if (refunded === p.transaction_amount) {
    p.status = 'refunded';
    p.status_detail = 'refunded';
    p.available_actions = [];
  } else {
    p.status_detail = 'partially_refunded';
  }
  p.date_last_modified = mlDate(at, siteId);
  order.last_updated = mlDate(at, siteId);
}

/** A chargeback: the payment turns `charged_back` (the whole amount is taken back) while the order stays `paid`. */
export function applyChargeback(order: MlOrder, at = new Date()): void {
  const siteId = order.context.site;
  const p = order.payments.find((x) => x.status === 'approved');
  if (!p) throw new Error(`MercadoLibre fake: order ${order.id} has no approved payment to charge back`);
  p.status = 'charged_back';
  p.status_detail = 'reimbursed';
  p.available_actions = [];
  p.date_last_modified = mlDate(at, siteId);
  order.last_updated = mlDate(at, siteId);
}

export type MlShipmentMode = 'me1' | 'me2' | 'custom' | 'not_specified';

export interface MlReceiverAddress {
  id: number;
  address_line: string;
  street_name: string;
  street_number: string;
  comment: string | null;
  zip_code: string;
  city: { id: string | null; name: string };
  state: { id: string; name: string };
  country: { id: string; name: string };
  neighborhood: { id: string | null; name: string | null };
  receiver_name: string;
  receiver_phone: string;
}

export interface MlShipment {
  id: number;
  order_id: number | null;
  sender_id: number;
  receiver_id: number;
  mode: MlShipmentMode;
  logistic_type: string;
  status: 'pending' | 'handling' | 'ready_to_ship' | 'shipped' | 'delivered' | 'not_delivered' | 'cancelled';
  substatus: string | null;
  tracking_number: string | null;
  tracking_method: string | null;
  service_id: number | null;
  site_id: string;
  date_created: string;
  last_updated: string;
  receiver_address: MlReceiverAddress;
}

export interface BuildMlShipmentInput {
  id?: number;
  sellerId: number;
  orderId?: number;
  receiverId?: number;
  mode?: MlShipmentMode;
  status?: MlShipment['status'];
  substatus?: string | null;
  trackingNumber?: string | null;
  siteId?: string;
  receiverAddress?: Partial<Omit<MlReceiverAddress, 'city' | 'state' | 'country'>> & {
    city?: Partial<MlReceiverAddress['city']>;
    state?: Partial<MlReceiverAddress['state']>;
    country?: Partial<MlReceiverAddress['country']>;
  };
}

/** A shipment waiting for the seller (ready_to_ship / ready_to_print for me2, handling for me1), Chile by default. */
export function buildMlShipment(input: BuildMlShipmentInput): MlShipment {
  const mode = input.mode ?? 'me2';
  const siteId = input.siteId ?? 'MLC';
  const now = mlDate(new Date(), siteId);
  const a = input.receiverAddress ?? {};
  const streetName = a.street_name ?? 'Avenida Providencia';
  const streetNumber = a.street_number ?? '1234';
  return {
    id: input.id ?? Number(`4${randomDigits(10)}`),
    order_id: input.orderId ?? null,
    sender_id: input.sellerId,
    receiver_id: input.receiverId ?? Number(randomDigits(9)),
    mode,
    logistic_type: mode === 'me2' ? 'drop_off' : 'default',
    status: input.status ?? (mode === 'me2' ? 'ready_to_ship' : 'handling'),
    substatus: input.substatus !== undefined ? input.substatus : mode === 'me2' ? 'ready_to_print' : null,
    tracking_number: input.trackingNumber ?? null,
    tracking_method: null,
    service_id: null,
    site_id: siteId,
    date_created: now,
    last_updated: now,
    receiver_address: {
      id: a.id ?? Number(randomDigits(10)),
      address_line: a.address_line ?? `${streetName} ${streetNumber}`,
      street_name: streetName,
      street_number: streetNumber,
      comment: a.comment ?? 'Depto 502',
      zip_code: a.zip_code ?? '7500000',
      city: { id: null, name: 'Providencia', ...a.city },
      state: { id: 'CL-RM', name: 'RM (Santiago)', ...a.state },
      country: { id: 'CL', name: 'Chile', ...a.country },
      neighborhood: { id: null, name: null, ...a.neighborhood },
      receiver_name: a.receiver_name ?? 'Juan Pérez',
      receiver_phone: a.receiver_phone ?? '56912345678',
    },
  };
}
