/**
 * One order's journey as a single time-ordered timeline, merged from what each service's admin API says about it
 * (and, when given, the operator console's audit entries and the order's Kafka records). Shared by the console's
 * order page and `postsale orders show`, so both tell the same story. No personal data enters a timeline entry:
 * names, addresses, emails and phones stay in the per-service answers, which the console masks.
 */
import { maskPersonal } from './mask';

export type TimelineSource = 'ingest' | 'fulfillment' | 'sales' | 'payouts' | 'operator' | 'kafka';

export interface TimelineEntry {
  at: string;
  source: TimelineSource;
  /** what happened, e.g. "OrderReceived", "RECEIVED → PURCHASING", "PayoutSent" */
  event: string;
  detail?: string;
  /** idempotency keys and ids worth searching for: notificationId/deliveryId, out_order_id, sender_batch_id … */
  keys?: Record<string, string>;
  kafka?: { topic: string; partition: number; offset: string };
  /** operator actions: who and why */
  actor?: string;
  reason?: string;
}

export interface OperatorAction {
  at: string;
  who: string;
  action: string;
  orderId?: string;
  reason: string;
  outcome: string;
  detail?: string;
}

export interface KafkaRecord {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  type: string;
  eventId?: string;
}

export interface OrderSummary {
  orderId: string;
  marketplace?: string;
  externalOrderId?: string;
  sellerId?: string;
  states: Record<string, string>;
  /** the sale's exact breakdown as one readable line, when the sale is recorded */
  breakdown?: string;
  payouts: Array<{ recipient: string; status: string; amount: string; paid?: string }>;
}

export interface Timeline {
  summary: OrderSummary;
  entries: TimelineEntry[];
}

type Json = Record<string, unknown>;
type Money = { amountMinor: number; currency: string };

const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as Json[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : undefined);

// Minor-unit digits of the currencies the pipeline handles; the rest default to 2 (display only, never arithmetic).
const DIGITS: Record<string, number> = { CLP: 0, JPY: 0, KRW: 0, HUF: 0, TWD: 0 };
export function showMoney(m: unknown): string {
  const money = obj(m) as Money | undefined;
  if (!money || typeof money.amountMinor !== 'number' || !money.currency) return '';
  const digits = DIGITS[money.currency] ?? 2;
  const sign = money.amountMinor < 0 ? '-' : '';
  const abs = String(Math.abs(money.amountMinor)).padStart(digits + 1, '0');
  const whole = digits === 0 ? abs : `${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
  return `${sign}${whole} ${money.currency}`;
}

const keysOf = (pairs: Record<string, unknown>): Record<string, string> | undefined => {
  const out = Object.fromEntries(Object.entries(pairs).filter(([, v]) => str(v) !== undefined).map(([k, v]) => [k, str(v)!]));
  return Object.keys(out).length ? out : undefined;
};

/** The per-service answers of `GET /admin/orders/:id` (a non-200 answer is kept as `{ status, error }`). */
export type Journey = Partial<Record<'ingest' | 'fulfillment' | 'sales' | 'payouts', unknown>>;

export function buildTimeline(orderId: string, answers: Journey, extras: { actions?: OperatorAction[]; kafka?: KafkaRecord[] } = {}): Timeline {
  // Masked first: whatever a service puts in a cause or details, no name, address, email or phone reaches a timeline.
  const journey = maskPersonal(answers);
  const entries: TimelineEntry[] = [];
  const ingest = found(journey.ingest);
  const fulfillment = found(journey.fulfillment);
  const sales = found(journey.sales);
  const payouts = found(journey.payouts);

  if (ingest) {
    for (const d of arr(ingest.deliveries)) {
      entries.push({
        at: str(d.receivedAt)!, source: 'ingest', event: 'WebhookReceived',
        detail: `${str(d.kind) ?? 'delivery'}: ${str(d.status) ?? ''}${d.reason ? ` (${str(d.reason)})` : ''}, ${str(d.attempts) ?? '?'} attempt(s)`,
        keys: keysOf({ deliveryId: d.id, externalOrderId: d.externalOrderId }),
      });
    }
    for (const e of arr(ingest.history)) {
      entries.push({
        at: str(e.at)!, source: 'ingest', event: str(e.event) ?? 'event', detail: str(e.cause),
        keys: keysOf({ eventId: e.eventId, deliveryId: e.deliveryId, refundId: e.refundId }),
      });
    }
  }

  if (fulfillment) {
    for (const t of arr(fulfillment.transitions)) {
      const details = obj(t.details);
      entries.push({
        at: str(t.at)!, source: 'fulfillment', event: `${str(t.from_state) ?? '∅'} → ${str(t.to_state)}`,
        detail: [str(t.cause), details ? describeDetails(details) : undefined].filter(Boolean).join(' · '),
        keys: keysOf({ supplierOrderId: details?.supplierOrderId }),
      });
    }
    for (const a of arr(fulfillment.attempts)) {
      entries.push({
        at: str(a.started_at)!, source: 'fulfillment', event: `PurchaseAttempt #${str(a.attempt_no) ?? '?'}`,
        detail: `${str(a.kind) ?? ''} via ${str(a.channel) ?? '?'} → ${str(a.outcome) ?? 'pending'}${a.message ? `: ${str(a.message)}` : ''}`,
        keys: keysOf({ out_order_id: a.out_order_id, supplierOrderId: a.supplier_order_id }),
      });
    }
    // fulfillment's admin audit (e.g. an operator's cancel): who by the credential, what, and why
    for (const a of arr(fulfillment.audit)) {
      const before = obj(a.before);
      const after = obj(a.after);
      entries.push({
        at: str(a.at)!, source: 'fulfillment', event: `Admin ${str(a.action) ?? 'action'}`,
        detail: before || after ? `${str(before?.state) ?? '?'} → ${str(after?.state) ?? '?'}` : undefined, actor: str(a.actor), reason: str(a.reason),
      });
    }
    for (const r of arr(fulfillment.responses)) {
      const summary = obj(r.summary);
      const numbers = summary ? ['supplierCost', 'supplierCostInSaleCurrency', 'saleAmount', 'maxCost', 'minMarginBps', 'margin', 'status'].filter((k) => summary[k] !== undefined).map((k) => `${k} ${String(summary[k])}`).join(', ') : '';
      entries.push({ at: str(r.at)!, source: 'fulfillment', event: `${str(r.method)}: ${str(r.outcome)}`, detail: numbers || undefined });
    }
  }

  if (sales) {
    for (const e of arr(sales.history)) {
      const detail = obj(e.detail);
      entries.push({
        at: str(e.at)!, source: 'sales', event: str(e.cause) ?? 'event', detail: `state ${str(e.state)}${detail ? ` · ${describeDetails(detail)}` : ''}`,
        keys: keysOf({ eventId: detail?.eventId, saleId: detail?.saleId }),
      });
    }
    for (const j of arr(sales.journal)) {
      const postings = arr(j.postings).map((p) => `${str(p.account)} ${showMoney(p.amount)}`).join(', ');
      entries.push({ at: str(j.postedAt)!, source: 'sales', event: `Journal ${str(j.kind)}`, detail: `${str(j.description) ?? ''}: ${postings}`, keys: keysOf({ entryKey: j.entryKey }) });
    }
  }

  const recipientOf = new Map<string, string>();
  if (payouts) {
    for (const p of arr(payouts.payouts)) recipientOf.set(str(p.id)!, str(p.recipient) ?? '?');
    for (const h of arr(payouts.history)) {
      const to = str(h.to) ?? '?';
      const cause = str(h.cause) ?? '';
      const batch = /in batch (\S+) as (\S+?):?\s/.exec(cause);
      entries.push({
        at: str(h.at)!, source: 'payouts',
        // SENT is the state payouts reaches as it publishes PayoutSent: name it as operators know it.
        event: to === 'SENT' ? 'PayoutSent' : `${str(h.from) ?? '∅'} → ${to}`,
        detail: `${recipientOf.get(str(h.intentId) ?? '') ?? 'payout'}: ${cause}`,
        keys: keysOf({ intentId: h.intentId, sender_batch_id: batch?.[1], sender_item_id: batch?.[2] }),
      });
    }
  }

  for (const a of extras.actions ?? []) {
    entries.push({ at: a.at, source: 'operator', event: `Operator ${a.action}`, detail: `${a.outcome}${a.detail ? ` · ${a.detail}` : ''}`, actor: a.who, reason: a.reason });
  }
  for (const k of extras.kafka ?? []) {
    entries.push({ at: k.timestamp, source: 'kafka', event: k.type, detail: `${k.topic} p${k.partition}@${k.offset}`, kafka: { topic: k.topic, partition: k.partition, offset: k.offset }, keys: keysOf({ eventId: k.eventId }) });
  }

  const valid = entries.filter((e) => e.at && !Number.isNaN(Date.parse(e.at)));
  // Stable sort: entries at the same millisecond keep the pipeline's order (ingest, fulfillment, sales, payouts).
  valid.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return { summary: summarize(orderId, journey, ingest, fulfillment, sales, payouts), entries: valid };
}

function found(answer: unknown): Json | undefined {
  const o = obj(answer);
  // orderJourney keeps a service's non-200 answer as { status: <number>, error }: that service knows nothing to show.
  return o && typeof o.status !== 'number' ? o : undefined;
}

function describeDetails(details: Json): string {
  return Object.entries(details)
    .filter(([k]) => k !== 'eventId')
    .map(([k, v]) => `${k} ${obj(v) && 'amountMinor' in (v as Json) ? showMoney(v) : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
}

function summarize(orderId: string, journey: Journey, ingest?: Json, fulfillment?: Json, sales?: Json, payouts?: Json): OrderSummary {
  const states: Record<string, string> = {};
  for (const [service, answer] of Object.entries(journey)) {
    const o = obj(answer);
    states[service] = o && str(o.state) ? str(o.state)! : o && typeof o.status === 'number' ? (o.status === 404 ? 'unknown to this service' : `unavailable (${o.status})`) : 'unknown';
  }
  const sale = obj(obj(sales?.sale)?.breakdown);
  const breakdown = sale
    ? `sale ${showMoney(sale.saleAmount)} = marketplace fee ${showMoney(sale.marketplaceFee)} + payment fee ${showMoney(sale.paymentFee)} + supplier ${showMoney(sale.supplierCost)} + platform commission ${showMoney(sale.platformCommission)} (${Number(sale.commissionRateBps) / 100} % of gross profit ${showMoney(sale.grossProfit)}) + seller net ${showMoney(sale.sellerNetProfit)}${sale.isLoss ? ` (LOSS ${showMoney(sale.loss)})` : ''}`
    : undefined;
  return {
    orderId,
    marketplace: str(ingest?.marketplace) ?? str(fulfillment?.marketplace),
    externalOrderId: str(ingest?.externalOrderId) ?? str(fulfillment?.externalOrderId),
    sellerId: str(ingest?.sellerId) ?? str(fulfillment?.sellerId) ?? str(sales?.sellerId),
    states,
    breakdown,
    payouts: arr(payouts?.payouts).map((p) => ({
      recipient: str(p.recipient) ?? '?', status: str(p.status) ?? '?', amount: showMoney(p.payable ?? p.amount),
      paid: obj(p.payout) ? showMoney(p.payout) : undefined,
    })),
  };
}

/** The timeline as readable text, one line per entry (what `postsale orders show` prints). */
export function formatTimeline(timeline: Timeline): string {
  const s = timeline.summary;
  const lines = [
    `order ${s.orderId}${s.marketplace ? `  ${s.marketplace} ${s.externalOrderId ?? ''}` : ''}${s.sellerId ? `  seller ${s.sellerId}` : ''}`,
    `states: ${Object.entries(s.states).map(([k, v]) => `${k} ${v}`).join(' · ')}`,
  ];
  if (s.breakdown) lines.push(s.breakdown);
  for (const p of s.payouts) lines.push(`payout to ${p.recipient}: ${p.amount} ${p.status}${p.paid ? ` (paid ${p.paid})` : ''}`);
  lines.push('');
  const width = Math.max(0, ...timeline.entries.map((e) => e.source.length));
  for (const e of timeline.entries) {
    const keys = e.keys ? `  [${Object.entries(e.keys).map(([k, v]) => `${k}=${v}`).join(' ')}]` : '';
    const who = e.actor ? `  by ${e.actor}${e.reason ? `: "${e.reason}"` : ''}` : '';
    lines.push(`${e.at}  ${e.source.padEnd(width)}  ${e.event}${e.detail ? ` — ${e.detail}` : ''}${who}${keys}`);
  }
  if (timeline.entries.length === 0) lines.push('(no service knows this order)');
  return lines.join('\n');
}
