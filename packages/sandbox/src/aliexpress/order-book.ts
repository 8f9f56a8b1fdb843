import { randomInt } from 'node:crypto';
import type { AliExpressEndReason, AliExpressOrderStatus, PaymentOutcome, SupplierOrder, TrackingEvent } from './types';

/**
 * Every supplier order ever created, the idempotency index (out_order_id / web memo → order id) and the status
 * machine. Payment settles lazily: the status is brought up to date whenever an order is read, from the clock, so a
 * test can move a fake clock instead of sleeping and nothing runs on timers.
 */
interface PendingPayment {
  at: number;
  to: 'WAIT_SELLER_SEND_GOODS' | 'RISK_CONTROL';
}

const PAYABLE: AliExpressOrderStatus[] = ['PLACE_ORDER_SUCCESS', 'PAYMENT_PROCESSING', 'RISK_CONTROL', 'RISK_CONTROL_HOLD', 'WAIT_GROUP', 'WAIT_COMPLETE_ADDRESS'];
const ETA_MS = 15 * 86_400_000;

export class OrderBook {
  private readonly byId = new Map<string, SupplierOrder>();
  private readonly pending = new Map<string, PendingPayment>();
  private readonly keys = new Map<string, { orderId: string; at: number }>();

  constructor(private readonly now: () => number) {}

  /** 16 digits like real ids (e.g. 3076306514497211), and below 2^53 so JSON numbers keep every digit. */
  newOrderId(): string {
    for (;;) {
      const id = String(3_000_000_000_000_000 + randomInt(0, 2 ** 47) * 7 + randomInt(0, 7));
      if (!this.byId.has(id)) return id;
    }
  }

  add(order: SupplierOrder, payment: { tryToPay: boolean; outcome: PaymentOutcome; settleAfterMs: number }): void {
    this.byId.set(order.orderId, order);
    if (!payment.tryToPay || payment.outcome === 'stay-unpaid') return; // awaiting payment: PLACE_ORDER_SUCCESS
    order.status = 'PAYMENT_PROCESSING';
    const to = payment.outcome === 'risk-control' ? 'RISK_CONTROL' : 'WAIT_SELLER_SEND_GOODS';
    this.pending.set(order.orderId, { at: order.createdAt + payment.settleAfterMs, to });
    this.refresh(order);
  }

  /** Idempotency keys are scoped by the caller (channel, app, account): one seller's key never finds another's order. */
  remember(scope: string, key: string, orderId: string): void {
    this.keys.set(`${scope}\u0000${key}`, { orderId, at: this.now() });
  }

  recall(scope: string, key: string, windowMs: number): SupplierOrder | undefined {
    const entry = this.keys.get(`${scope}\u0000${key}`);
    if (!entry || this.now() - entry.at >= windowMs) return undefined;
    return this.get(entry.orderId);
  }

  get(orderId: string | number): SupplierOrder | undefined {
    const order = this.byId.get(String(orderId));
    if (order) this.refresh(order);
    return order;
  }

  require(orderId: string | number): SupplierOrder {
    const order = this.get(orderId);
    if (!order) throw new Error(`unknown AliExpress order ${orderId}`);
    return order;
  }

  all(): SupplierOrder[] {
    return [...this.byId.values()].map((order) => {
      this.refresh(order);
      return order;
    });
  }

  settle(orderId: string | number): SupplierOrder {
    const order = this.require(orderId);
    if (!PAYABLE.includes(order.status)) throw new Error(`order ${order.orderId} is ${order.status}; nothing to settle`);
    this.pending.delete(order.orderId);
    this.markPaid(order, this.now());
    return order;
  }

  ship(orderId: string | number, shipment: { carrier: string; trackingNumber: string }): SupplierOrder {
    const order = this.require(orderId);
    if (order.status !== 'WAIT_SELLER_SEND_GOODS') {
      throw new Error(`order ${order.orderId} is ${order.status}; only a paid order (WAIT_SELLER_SEND_GOODS) ships`);
    }
    const at = this.now();
    const events: TrackingEvent[] = [
      { at, name: 'Accepted by carrier', desc: `[${shipment.carrier}] Shipment picked up, tracking number ${shipment.trackingNumber}` },
    ];
    order.shipment = { ...shipment, shippedAt: at, events };
    order.status = 'WAIT_BUYER_ACCEPT_GOODS';
    return order;
  }

  addTrackingEvent(orderId: string | number, event: { name: string; desc: string }): SupplierOrder {
    const order = this.require(orderId);
    if (!order.shipment) throw new Error(`order ${order.orderId} has not shipped`);
    order.shipment.events.push({ at: this.now(), ...event });
    return order;
  }

  deliver(orderId: string | number): SupplierOrder {
    const order = this.require(orderId);
    if (order.status !== 'WAIT_BUYER_ACCEPT_GOODS' || !order.shipment) {
      throw new Error(`order ${order.orderId} is ${order.status}; only a shipped order is delivered`);
    }
    order.shipment.events.push({ at: this.now(), name: 'Delivered', desc: 'Delivered to the recipient' });
    order.status = 'FINISH';
    order.endReason = 'buyer_accept_goods';
    return order;
  }

  /** Puts an unshipped order in one of the other documented statuses (Corrections), until settle() or another move. */
  hold(orderId: string | number, status: 'RISK_CONTROL_HOLD' | 'WAIT_GROUP' | 'WAIT_COMPLETE_ADDRESS'): SupplierOrder {
    const order = this.require(orderId);
    if (order.shipment || order.status === 'FINISH' || order.status === 'IN_CANCEL') throw new Error(`order ${order.orderId} is ${order.status}; it cannot be held`);
    this.pending.delete(order.orderId);
    order.status = status;
    return order;
  }

  /** Closes an order without delivery: FINISH with a close `end_reason` (Corrections: FINISH is not "delivered"). */
  close(orderId: string | number, endReason: AliExpressEndReason): SupplierOrder {
    const order = this.require(orderId);
    if (order.status === 'FINISH') throw new Error(`order ${order.orderId} is already FINISH`);
    this.pending.delete(order.orderId);
    order.status = 'FINISH';
    order.endReason = endReason;
    return order;
  }

  cancel(orderId: string | number): SupplierOrder {
    const order = this.require(orderId);
    if (order.status === 'FINISH' || order.status === 'IN_CANCEL') {
      throw new Error(`order ${order.orderId} is ${order.status}; it cannot be cancelled`);
    }
    this.pending.delete(order.orderId);
    order.status = 'IN_CANCEL';
    order.cancelledAt = this.now();
    return order;
  }

  /** Estimated arrival, reported by tracking.get. */
  etaOf(order: SupplierOrder): number | undefined {
    return order.shipment ? order.shipment.shippedAt + ETA_MS : undefined;
  }

  private refresh(order: SupplierOrder): void {
    const pending = this.pending.get(order.orderId);
    if (!pending || order.status !== 'PAYMENT_PROCESSING' || this.now() < pending.at) return;
    this.pending.delete(order.orderId);
    if (pending.to === 'RISK_CONTROL') order.status = 'RISK_CONTROL';
    else this.markPaid(order, pending.at);
  }

  private markPaid(order: SupplierOrder, at: number): void {
    order.status = 'WAIT_SELLER_SEND_GOODS';
    order.paidAt = at;
  }
}
