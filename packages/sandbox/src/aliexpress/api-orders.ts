import { aliTime, asRecord, asString, jsonParam, type ApiAnswer, type ApiCall } from './api-call';
import { gatewayErrors } from './envelope';
import { placeOrder, type OrderLineRequest } from './place-order';
import type { FakeState } from './state';
import type { LogisticsAddress, SupplierOrder } from './types';

/**
 * aliexpress.ds.order.create. `out_order_id` is the idempotency key (per app and account, for the idempotency
 * window, 24 h by default): the same key again does not create a second order. By default (the real behaviour,
 * external-apis.md "Corrections") it answers is_success:false REPEATED_ORDER_ERROR WITHOUT the existing order's id:
 * re-sending the create tells a client "placed", never which order. There is no documented "find by out_order_id"
 * method and this fake invents none.
 */
export function orderCreate(state: FakeState, call: ApiCall): ApiAnswer {
  const placed = jsonParam(call, 'param_place_order_request4_open_api_d_t_o', true);
  if ('error' in placed) return placed;
  const extend = jsonParam(call, 'ds_extend_request', false);
  if ('error' in extend) return extend;
  const request = asRecord(placed.value);
  const payment = asRecord(asRecord(extend.value).payment);
  const outcome = placeOrder(state.placeContext(), {
    account: call.account,
    channel: 'api',
    appKey: call.appKey,
    idempotencyKey: asString(request.out_order_id),
    address: toAddress(request.logistics_address),
    lines: toLines(request.product_items),
    payCurrency: asString(payment.pay_currency),
    // try_to_pay arrives as a boolean or as the string "true"/"false" depending on the SDK
    tryToPay: String(payment.try_to_pay ?? 'false').toLowerCase() === 'true',
  });
  if (!outcome.ok) return { result: { is_success: false, error_code: outcome.errorCode, error_msg: outcome.errorMsg } };
  return { result: { is_success: true, order_list: { number: [Number(outcome.order.orderId)] } } };
}

function toAddress(raw: unknown): LogisticsAddress {
  const address: LogisticsAddress = {};
  for (const [key, value] of Object.entries(asRecord(raw))) address[key] = asString(value);
  return address;
}

function toLines(raw: unknown): OrderLineRequest[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((entry) => {
    const item = asRecord(entry);
    return {
      productId: asString(item.product_id) ?? '',
      quantity: item.product_count,
      skuAttr: asString(item.sku_attr),
      logisticsServiceName: asString(item.logistics_service_name),
      memo: asString(item.order_memo),
    };
  });
}

/** An order the caller's account owns, or undefined (unknown and not-yours look the same: tenants stay isolated). */
function ownOrder(state: FakeState, call: ApiCall, orderId: string): SupplierOrder | undefined {
  const order = state.book.get(orderId);
  return order && order.account === call.account ? order : undefined;
}

/**
 * aliexpress.trade.ds.order.get. During `orderQueryLagMs` after creation the order is reported as not found,
 * imitating the real ~10 s lag: "not found" right after a create proves nothing.
 */
export function orderGet(state: FakeState, call: ApiCall): ApiAnswer {
  const query = jsonParam(call, 'single_order_query', true);
  if ('error' in query) return query;
  const orderId = asString(asRecord(query.value).order_id);
  if (!orderId) return { error: gatewayErrors.missingParameter('single_order_query.order_id') };
  const order = ownOrder(state, call, orderId);
  if (!order || state.now() - order.createdAt < state.orderQueryLagMs) return { error: gatewayErrors.orderNotFound(orderId) };
  return { result: orderResult(state, order) };
}

const LOGISTICS_STATUS: Record<SupplierOrder['status'], string> = {
  PLACE_ORDER_SUCCESS: 'NO_LOGISTICS',
  PAYMENT_PROCESSING: 'NO_LOGISTICS',
  RISK_CONTROL: 'NO_LOGISTICS',
  WAIT_SELLER_SEND_GOODS: 'NO_LOGISTICS',
  WAIT_BUYER_ACCEPT_GOODS: 'SELLER_SEND_GOODS',
  FINISH: 'BUYER_ACCEPT_GOODS',
  IN_CANCEL: 'NO_LOGISTICS',
  RISK_CONTROL_HOLD: 'NO_LOGISTICS',
  WAIT_GROUP: 'NO_LOGISTICS',
  WAIT_COMPLETE_ADDRESS: 'NO_LOGISTICS',
};

/**
 * FINISH covers closed orders too (Corrections, "AliExpress Dropshipping"): an order closed before it shipped
 * (seller_send_goods_timeout, cancel_order_close_trade, risk_reject_closed…) never had logistics.
 */
function logisticsStatusOf(order: SupplierOrder): string {
  if (order.status === 'FINISH' && !order.shipment) return 'NO_LOGISTICS';
  return LOGISTICS_STATUS[order.status];
}

function orderResult(state: FakeState, order: SupplierOrder): Record<string, unknown> {
  const money = (amount: string) => ({ amount, currency_code: order.amount.currency });
  const unpaid = order.paidAt === undefined && order.status !== 'IN_CANCEL';
  const products = order.items.map((item) => ({
    product_id: Number(item.productId) || item.productId,
    sku_id: item.skuId,
    sku_attr: item.skuAttr,
    product_name: state.catalog.find(item.productId)?.subject ?? '',
    product_count: item.quantity,
    product_price: money(item.unitPrice),
    shipping_fee: money(item.freight),
    logistics_service_name: item.logisticsServiceName,
    ...(order.status === 'IN_CANCEL' ? { end_reason: 'buyer_cancel_order' } : {}),
    ...(order.status === 'FINISH' && order.endReason ? { end_reason: order.endReason } : {}),
  }));
  return {
    gmt_create: aliTime(order.createdAt),
    order_status: order.status,
    logistics_status: logisticsStatusOf(order),
    order_amount: money(order.amount.amount),
    user_order_amount: money(order.amount.amount),
    ...(order.paidAt !== undefined ? { order_paidtime_string: aliTime(order.paidAt) } : {}),
    ...(unpaid ? { pay_timeout_second: '86400' } : {}),
    child_order_list: { aeop_child_order_info: products },
    logistics_info_list: {
      aeop_order_logistics_info: order.shipment
        ? [{ logistics_no: order.shipment.trackingNumber, logistics_service: order.items[0]?.logisticsServiceName ?? '' }]
        : [],
    },
    store_info: { store_id: 1100000001, store_name: 'Sandbox Supplier Store', store_url: 'https://www.aliexpress.com/store/1100000001' },
  };
}

/**
 * aliexpress.ds.order.tracking.get. Before shipment the answer is ret:true with an EMPTY tracking_detail list (not an
 * error): "no tracking yet" is a normal state. An unknown or foreign order answers ret:false with a msg.
 */
export function trackingGet(state: FakeState, call: ApiCall): ApiAnswer {
  const orderId = call.params.ae_order_id;
  if (!orderId) return { error: gatewayErrors.missingParameter('ae_order_id') };
  const order = ownOrder(state, call, orderId);
  if (!order) return { result: { ret: false, code: 'ORDER_NOT_FOUND', msg: `Order ${orderId} not found` } };
  const shipment = order.shipment;
  const details = shipment
    ? [
        {
          mail_no: shipment.trackingNumber,
          carrier_name: shipment.carrier,
          eta_time_stamps: state.book.etaOf(order),
          detail_node_list: {
            detail_node: [...shipment.events].reverse().map((e) => ({
              time_stamp: e.at,
              tracking_name: e.name,
              tracking_detail_desc: e.desc,
            })),
          },
        },
      ]
    : [];
  return { result: { ret: true, data: { tracking_detail_line_list: { tracking_detail: details } } } };
}
