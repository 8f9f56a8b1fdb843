import { add, money, parseDecimal, type Money } from '@postsale/contracts';
import { keepLease, retryDelayMs, type Lease } from '@postsale/runtime';
import { checkAgainAt, decidePayment } from './follow-up.use-case';
import { evaluatePriceGuard } from './price-guard';
import { BrowserLoginError, sendToReview, SupplierCallError, type Attempt, type Fulfillment, type FulfillmentDeps, type PurchaseChannel, type SupplierApi, type SupplierOrderStatus } from './ports';
import { Reasons, States } from './states';

/**
 * The purchase worker's use case, for one claimed order in RECEIVED or PURCHASING:
 *   RECEIVED:   check address, mapping, credentials and the price guard (fresh product.get for THIS order's country);
 *               then record the intent (attempt row, state PURCHASING) and commit it BEFORE calling the supplier.
 *   PURCHASING: a previous attempt's outcome is unknown (timeout, 5xx, crash): resolve it with the supplier first —
 *               re-sending order.create with the SAME out_order_id either places it (the first call never arrived)
 *               or answers REPEATED_ORDER_ERROR, which means PLACED (AliExpress gives no order id and has no lookup by
 *               out_order_id): the id is then looked for on the seller's "my orders" page by our memo, else the
 *               order goes to review SUPPLIER_ORDER_ID_UNKNOWN — never re-placed, never marked not placed. The
 *               web checkout's order list is searched by our memo — never a blind second purchase.
 * The result is recorded after the call: AWAITING_PAYMENT (accepted, not yet paid), NEEDS_REVIEW with the
 * supplier's code, or a retry with exponential backoff and jitter, bounded.
 */
interface PlannedItem {
  productId: string;
  skuId: string;
  skuAttr: string;
  quantity: number;
  logisticsServiceName?: string;
}

interface Plan {
  channel: PurchaseChannel;
  items: PlannedItem[];
  address: Record<string, string>;
  supplierCost: Money;
}

/**
 * The price guard's verdict with the supplier's answers it read (supplier_responses 'price-guard', for the operator):
 * recorded in the transaction that records what it led to — the intent or the review — which commits even when the
 * order was moved or fenced off meanwhile.
 */
interface PriceCheck {
  outcome: string;
  summary: unknown;
}

type Preparation =
  | { kind: 'ready'; plan: Plan; api: SupplierApi; priceCheck: PriceCheck }
  | { kind: 'review'; reason: string; message: string; details?: Record<string, unknown>; supplierCode?: string; priceCheck?: PriceCheck }
  | { kind: 'retry'; code: string; message: string };

type Outcome =
  | { outcome: 'CREATED'; supplierOrderId: string; response?: unknown }
  | { outcome: 'REJECTED'; reason: string; supplierCode: string; message: string; response?: unknown }
  | { outcome: 'UNKNOWN' | 'NOT_PLACED'; code: string; message: string }
  /** the supplier says our out_order_id was placed (REPEATED_ORDER_ERROR) but not which order it is */
  | { outcome: 'PLACED'; code: string; message: string; response?: unknown };

/**
 * Two replicas (DESIGN guarantee 6): the claim gave this worker a lease with a fencing token (`f.leaseVersion`). Every
 * commit below is conditional on that token, so a worker whose lease expired — and whose order another worker has
 * claimed since — commits nothing. While the worker is at it (a browser checkout can take longer than a lease) the lease
 * is renewed (the runtime's `keepLease`; the job worker passes the one it keeps), so no other worker claims the order
 * in the first place.
 */
export async function runPurchase(deps: FulfillmentDeps, f: Fulfillment, lease: Lease = renewedLease(deps, f)): Promise<void> {
  try {
    return await purchase(deps, f, lease);
  } finally {
    await lease.stop();
  }
}

/** The order's lease, renewed while the purchase runs, for a caller that claimed the order itself. */
export function renewedLease(deps: FulfillmentDeps, f: Fulfillment): Lease {
  return keepLease({
    renew: () => deps.repo.renewLease(f.orderId, f.leaseVersion, deps.settings.leaseMs),
    leaseMs: deps.settings.leaseMs,
    logger: deps.logger,
    context: { step: 'purchase', orderId: f.orderId, fence: f.leaseVersion },
  });
}

async function purchase(deps: FulfillmentDeps, f: Fulfillment, lease: Lease): Promise<void> {
  const fence = f.leaseVersion;
  // the last attempt's outcome matters only in THIS purchasing phase (a RECEIVED order starts a new one: not read)
  const last = f.state === States.PURCHASING ? await deps.repo.lastAttempt(f.orderId) : undefined;
  /** the attempt whose call may have bought: its channel and key are the ones to resolve it with */
  const unresolved = last && (last.outcome === 'UNKNOWN' || last.outcome === 'PENDING') ? last : undefined;

  if (f.state === States.PURCHASING && last && last.outcome === 'NOT_PLACED' && f.cancelRequested) {
    // nothing exists at the supplier (NOT_PLACED is recorded only when that is certain) and the buyer cancelled: stop
    await deps.repo.transition(undefined, f.orderId, [States.PURCHASING], States.CANCELLED, 'cancelled while retrying', { lastAttempt: last.attemptNo }, { nextRunAt: null }, fence);
    return;
  }
  if (unresolved && f.cancelRequested && unresolved.channel !== 'BROWSER') {
    // Cancelled while a purchase's outcome is unknown. On the API the only way to resolve it is to re-send the create,
    // which buys if the first call never arrived: a cancelled order must not be bought, and it must not be called
    // CANCELLED while something may exist at the supplier either. A person looks (never CANCELLED).
    await sendToReview(deps, undefined, f, [States.PURCHASING], {
      reason: Reasons.UNRESOLVED_PURCHASE,
      message: `the marketplace order was cancelled while the outcome of the purchase with out_order_id ${unresolved.outOrderId} is unknown; look for it at the supplier (note to seller = ${unresolved.outOrderId}) and cancel it there if it exists`,
      details: { outOrderId: unresolved.outOrderId, channel: unresolved.channel, cancelRequested: true, lastAttempt: unresolved.attemptNo },
      publishFailure: false,
      fence,
    }, 'purchase worker');
    return;
  }
  if (f.state === States.PURCHASING && f.purchaseAttempts >= deps.settings.purchaseMaxAttempts) {
    await sendToReview(deps, undefined, f, [States.PURCHASING], {
      reason: unresolved ? Reasons.UNRESOLVED_PURCHASE : Reasons.RETRIES_EXHAUSTED,
      message: unresolved
        ? `after ${f.purchaseAttempts} attempts the outcome is still unknown; look for out_order_id ${f.outOrderId} at the supplier`
        : `the supplier was unavailable for ${f.purchaseAttempts} attempts`,
      details: { attempts: f.purchaseAttempts, outOrderId: f.outOrderId, lastCode: last?.supplierCode ?? null, ...(f.cancelRequested ? { cancelRequested: true } : {}) },
      // a cancelled order whose outcome is unknown is not a purchase failure: the sale is being cancelled anyway
      publishFailure: !(unresolved && f.cancelRequested),
      fence,
    }, 'purchase worker');
    return;
  }
  if (unresolved) {
    const first = await deps.repo.firstCreateAttempt(f.orderId);
    if (first && Date.now() - first.startedAt.getTime() > deps.settings.outOrderIdWindowMs) {
      // outside the idempotency window a re-send could buy a second time: a person must look
      await sendToReview(deps, undefined, f, [States.PURCHASING], {
        reason: Reasons.UNRESOLVED_PURCHASE,
        message: `the outcome of the purchase with out_order_id ${f.outOrderId} is unknown and its idempotency window has passed`,
        details: { outOrderId: f.outOrderId, firstAttemptAt: first.startedAt.toISOString() },
        fence,
      }, 'purchase worker');
      return;
    }
  }

  // The channel is pinned: an unknown outcome is resolved on the channel that made the call (a RESOLVE on the API
  // cannot see a web checkout's order, and the web orders page cannot see an API order's answer), whatever the seller's
  // policy says now; a later CREATE in the same purchasing phase keeps the channel fixed at the intent.
  const pinned = (unresolved?.channel ?? (f.state === States.PURCHASING ? f.channel : null)) as PurchaseChannel | null;
  const prepared = await prepare(deps, f, pinned ?? undefined);
  if (prepared.kind === 'retry') {
    deps.metrics.workerFailures.inc({ step: 'price_check', code: prepared.code });
    const next = new Date(Date.now() + retryDelayMs(f.statusChecks + 1, deps.settings.purchaseRetryBaseMs, deps.settings.purchaseRetryMaxMs));
    await lease.stop();
    await deps.repo.update(undefined, f.orderId, f.state, { statusChecks: f.statusChecks + 1, nextRunAt: next }, fence);
    return;
  }
  if (prepared.kind === 'review') {
    // one statement: the price check's answer is recorded whether or not the order still moves
    const check = prepared.priceCheck;
    await sendToReview(deps, undefined, f, [f.state], {
      reason: prepared.reason,
      message: unresolved ? `${prepared.message}; NOTE an earlier attempt's outcome is unknown (out_order_id ${unresolved.outOrderId})` : prepared.message,
      details: prepared.details,
      supplierCode: prepared.supplierCode,
      fence,
      answer: check && { method: 'price-guard', outcome: check.outcome, summary: check.summary },
    }, 'purchase worker');
    return;
  }

  const { plan, api } = prepared;
  const kind: Attempt['kind'] = unresolved ? 'RESOLVE' : 'CREATE';
  // the idempotency key: the one the unresolved call used, else the order's own (fixed when the order was recorded)
  const outOrderId = unresolved?.outOrderId ?? f.outOrderId!;
  // The intent — channel and key pinned on the attempt row — committed before the call, under this worker's lease.
  const received = f.state === States.RECEIVED;
  const attemptId = await deps.repo.recordPurchaseIntent({
    orderId: f.orderId,
    from: received ? States.RECEIVED : States.PURCHASING,
    fence,
    patch: received ? { channel: plan.channel, purchaseAttempts: f.purchaseAttempts + 1, reasonCode: null, reasonDetails: null } : { purchaseAttempts: f.purchaseAttempts + 1 },
    transition: received ? { cause: 'purchase intent', details: { channel: plan.channel, supplierCost: plan.supplierCost } } : undefined,
    attempt: { kind, channel: plan.channel, outOrderId },
    priceCheck: prepared.priceCheck,
  });
  // someone else moved or claimed the order (operator, cancellation, another worker): do nothing
  if (!attemptId) return;

  let outcome = plan.channel === 'BROWSER' ? await viaBrowser(deps, f, plan, kind, outOrderId) : await viaApi(api, plan, outOrderId);
  if (outcome.outcome === 'PLACED') outcome = await findPlacedOrder(deps, f, outOrderId, outcome);
  if (kind === 'RESOLVE' && outcome.outcome === 'NOT_PLACED' && outcome.code !== NO_ORDER_WITH_MEMO) {
    // This RESOLVE failed before it could tell (quota, rate limit, supplier busy): the earlier call's outcome is
    // still unknown. Recording NOT_PLACED would let a cancellation mark the order CANCELLED although it may be bought.
    outcome = { outcome: 'UNKNOWN', code: outcome.code, message: `resolution not possible yet: ${outcome.message}` };
  }
  // The first payment check, before the acceptance is recorded: with try_to_pay the supplier has usually settled the
  // payment by now, and the outcome's transaction then records PURCHASED too — one commit where a check of its own was
  // a second. (A crash before that commit leaves the attempt unknown: resolved with the same key, as any crash there.)
  const paymentCheck = outcome.outcome === 'CREATED' ? await firstPaymentCheck(deps, api, f, outcome.supplierOrderId) : undefined;
  await lease.stop();
  await recordOutcome(deps, { ...f, channel: plan.channel, purchaseAttempts: f.purchaseAttempts + 1 }, attemptId, kind, outcome, paymentCheck);
}

const NO_ORDER_WITH_MEMO = 'NO_ORDER_WITH_MEMO';

/**
 * The supplier's order as a payment check reads it, or undefined when the read failed: the outcome is recorded all the
 * same, and the follow-up worker checks the payment later. Never throws (the purchase's answer must be recorded).
 */
async function firstPaymentCheck(deps: FulfillmentDeps, api: SupplierApi, f: Fulfillment, supplierOrderId: string): Promise<SupplierOrderStatus | undefined> {
  try {
    return await api.getOrder(supplierOrderId);
  } catch (error) {
    const code = error instanceof SupplierCallError ? error.code : 'UNEXPECTED';
    deps.metrics.workerFailures.inc({ step: 'follow_up_awaiting_payment', code });
    deps.logger.warn({ orderId: f.orderId, code }, 'first payment check failed; the follow-up worker checks again');
    return undefined;
  }
}

async function recordOutcome(deps: FulfillmentDeps, f: Fulfillment, attemptId: string, kind: Attempt['kind'], outcome: Outcome, paymentCheck?: SupplierOrderStatus): Promise<void> {
  const fence = f.leaseVersion;
  await deps.repo.transaction(async (trx): Promise<void> => {
    // The row lock serializes this commit with a cancellation arriving on the orders topic (which locks it too); the
    // attempt's result is recorded only while our lease is current.
    const current = await deps.repo.finishAttempt(trx, f.orderId, fence, attemptId, {
      outcome: outcome.outcome,
      supplierOrderId: outcome.outcome === 'CREATED' ? outcome.supplierOrderId : undefined,
      supplierCode: outcome.outcome === 'REJECTED' ? outcome.supplierCode : outcome.outcome === 'CREATED' ? undefined : outcome.code,
      message: 'message' in outcome ? outcome.message : undefined,
      response: 'response' in outcome ? outcome.response : undefined,
    });
    if (!current || current.leaseVersion !== fence) {
      // Our lease expired and another worker claimed the order: that worker owns it now (it resolves our attempt with
      // the same key). We commit nothing; the late answer is kept for the operator.
      await deps.repo.recordSupplierResponse(f.orderId, 'late-purchase-answer', outcome.outcome, {
        attemptId,
        leaseVersion: fence,
        currentLeaseVersion: current?.leaseVersion ?? null,
        ...(outcome.outcome === 'CREATED' ? { supplierOrderId: outcome.supplierOrderId } : {}),
        ...('code' in outcome ? { code: outcome.code } : {}),
      }, trx);
      deps.metrics.workerFailures.inc({ step: 'purchase', code: 'LEASE_LOST' });
      deps.logger.warn({ orderId: f.orderId, leaseVersion: fence, current: current?.leaseVersion, outcome: outcome.outcome }, 'purchase answer after the lease was lost: not committed');
      return;
    }
    if (current.state !== States.PURCHASING) return;
    const cancelRequested = current.cancelRequested;
    if (outcome.outcome === 'CREATED') {
      if (cancelRequested) {
        await sendToReview(deps, trx, f, [States.PURCHASING], {
          reason: Reasons.CANCEL_AT_SUPPLIER_REQUIRED,
          message: `supplier order ${outcome.supplierOrderId} exists but the marketplace order was cancelled; cancel it at the supplier`,
          details: { supplierOrderId: outcome.supplierOrderId },
          publishFailure: false,
          fence,
        }, 'purchase outcome');
        await deps.repo.update(trx, f.orderId, States.NEEDS_REVIEW, { supplierOrderId: outcome.supplierOrderId });
        return;
      }
      const accepted = await deps.repo.transition(trx, f.orderId, [States.PURCHASING], States.AWAITING_PAYMENT, 'supplier accepted the order', { supplierOrderId: outcome.supplierOrderId }, {
        supplierOrderId: outcome.supplierOrderId,
        statusChecks: 0,
        // without a first check's answer, the follow-up worker checks the payment at once
        nextRunAt: new Date(),
      }, fence);
      deps.metrics.purchases.inc({ outcome: 'accepted', reason: 'none', channel: f.channel ?? 'API' });
      // the first payment check's answer decided in this transaction: PURCHASED, review, or the next check's time
      if (accepted && paymentCheck) await decidePayment(deps, accepted, paymentCheck, trx);
      else if (accepted) checkAgainAt(deps, accepted.nextRunAt, trx);
      return;
    }
    if (outcome.outcome === 'PLACED') {
      // Placed at the supplier, id unknown: NOT a failure (no PurchaseFailed), never placed again, never "not placed".
      await sendToReview(deps, trx, f, [States.PURCHASING], {
        reason: cancelRequested ? Reasons.CANCEL_AT_SUPPLIER_REQUIRED : Reasons.SUPPLIER_ORDER_ID_UNKNOWN,
        message: cancelRequested
          ? `the marketplace order was cancelled but AliExpress says out_order_id ${f.outOrderId} was already placed (${outcome.code}); find it in the seller's AliExpress orders and cancel it there`
          : `AliExpress says the order with out_order_id ${f.outOrderId} was already placed (${outcome.code}: ${outcome.message}) but gives no order id; find it in the seller's AliExpress orders (note to seller = ${f.outOrderId}) and link it with mark-purchased. Do not buy again.`,
        supplierCode: outcome.code,
        details: { outOrderId: f.outOrderId, placedAtSupplier: true },
        publishFailure: false,
        fence,
      }, 'purchase outcome');
      return;
    }
    if (outcome.outcome === 'REJECTED') {
      if (cancelRequested && kind === 'CREATE') {
        await deps.repo.transition(trx, f.orderId, [States.PURCHASING], States.CANCELLED, 'cancelled; supplier refused anyway', { supplierCode: outcome.supplierCode }, { nextRunAt: null }, fence);
        return;
      }
      if (cancelRequested) {
        // a refused RESOLVE does not prove the earlier, unknown call placed nothing: never CANCELLED on that basis
        await sendToReview(deps, trx, f, [States.PURCHASING], {
          reason: Reasons.UNRESOLVED_PURCHASE,
          message: `the marketplace order was cancelled; the supplier refused the resolution (${outcome.supplierCode}) so whether out_order_id ${f.outOrderId} was placed is unknown`,
          supplierCode: outcome.supplierCode,
          details: { outOrderId: f.outOrderId, cancelRequested: true },
          publishFailure: false,
          fence,
        }, 'purchase outcome');
        return;
      }
      await sendToReview(deps, trx, f, [States.PURCHASING], {
        reason: outcome.reason,
        message: kind === 'RESOLVE' ? `${outcome.message}; NOTE an earlier attempt's outcome was unknown (out_order_id ${f.outOrderId})` : outcome.message,
        supplierCode: outcome.supplierCode,
        fence,
      }, 'purchase outcome');
      return;
    }
    deps.metrics.workerFailures.inc({ step: 'purchase', code: outcome.code });
    deps.logger.warn({ orderId: f.orderId, code: outcome.code, outcome: outcome.outcome, attempt: f.purchaseAttempts }, 'purchase attempt inconclusive; will resolve and retry');
    const delay = retryDelayMs(f.purchaseAttempts, deps.settings.purchaseRetryBaseMs, deps.settings.purchaseRetryMaxMs);
    await deps.repo.update(trx, f.orderId, States.PURCHASING, { nextRunAt: new Date(Date.now() + delay) }, fence);
  });
}

async function viaApi(api: SupplierApi, plan: Plan, outOrderId: string): Promise<Outcome> {
  try {
    const result = await api.createOrder({
      outOrderId,
      address: plan.address,
      // our out_order_id also goes in the note to seller: the only way to find the order again on the seller's
      // "my orders" page when AliExpress answers REPEATED_ORDER_ERROR without an id
      items: plan.items.map((i) => ({ productId: i.productId, quantity: i.quantity, skuAttr: i.skuAttr, logisticsServiceName: i.logisticsServiceName, memo: outOrderId })),
    });
    if (result.ok) return { outcome: 'CREATED', supplierOrderId: result.orderId, response: result.raw };
    if (result.errorCode === 'REPEATED_ORDER_ERROR') {
      // external-apis.md "Corrections": REPEATED_ORDER_ERROR means PLACED (with no order id): never buy again
      return { outcome: 'PLACED', code: result.errorCode, message: result.errorMsg || 'repeated placed order', response: result.raw };
    }
    return { outcome: 'REJECTED', reason: Reasons.SUPPLIER_REJECTED, supplierCode: result.errorCode, message: result.errorMsg || result.errorCode, response: result.raw };
  } catch (error) {
    return fromSupplierError(error);
  }
}

async function viaBrowser(deps: FulfillmentDeps, f: Fulfillment, plan: Plan, kind: Attempt['kind'], memo: string): Promise<Outcome> {
  const secrets = await deps.sellers.supplierSecrets(f.sellerId);
  const login = secrets.web!;
  const item = plan.items[0]!;
  try {
    if (kind === 'RESOLVE') {
      const found = await deps.browser.findOrdersByMemo(login, memo);
      if (found.length > 0) return { outcome: 'CREATED', supplierOrderId: found[0]!.orderId, response: { resolvedBy: 'orders page', rows: found } };
      return { outcome: 'NOT_PLACED', code: NO_ORDER_WITH_MEMO, message: 'the supplier has no order with our memo: safe to place' };
    }
    const a = plan.address;
    const result = await deps.browser.placeOrder(login, {
      productId: item.productId,
      skuAttr: item.skuAttr,
      quantity: item.quantity,
      memo,
      address: { full_name: a.full_name!, address: a.address!, address2: a.address2, city: a.city!, province: a.province, zip: a.zip ?? '', country: a.country!, mobile_no: a.mobile_no },
    });
    if (result.outcome === 'PLACED') return { outcome: 'CREATED', supplierOrderId: result.orderId, response: result };
    if (result.outcome === 'REFUSED') return { outcome: 'REJECTED', reason: Reasons.BROWSER_CHECKOUT_FAILED, supplierCode: result.code, message: result.message, response: result };
    return { outcome: 'UNKNOWN', code: result.code, message: result.message };
  } catch (error) {
    if (error instanceof BrowserLoginError) return { outcome: 'REJECTED', reason: Reasons.SUPPLIER_AUTH_FAILED, supplierCode: 'WEB_LOGIN_REFUSED', message: error.message };
    // a crash of the browser may have happened after "place order": unknown, resolved by memo next time
    return { outcome: 'UNKNOWN', code: 'BROWSER_ERROR', message: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * REPEATED_ORDER_ERROR said "placed" without an id. The other means AliExpress offers: the seller's "my orders" page,
 * where our out_order_id is the note to seller, read with the seller's web login when there is one. Exactly one order
 * found → that is ours (CREATED); none, several or no web login → stays PLACED (review). A failing lookup too.
 */
async function findPlacedOrder(deps: FulfillmentDeps, f: Fulfillment, outOrderId: string, placed: Outcome & { outcome: 'PLACED' }): Promise<Outcome> {
  const login = (await deps.sellers.supplierSecrets(f.sellerId)).web;
  if (!login) return placed;
  try {
    const found = await deps.browser.findOrdersByMemo(login, outOrderId);
    if (found.length === 1) {
      return { outcome: 'CREATED', supplierOrderId: found[0]!.orderId, response: { resolvedBy: 'orders page after REPEATED_ORDER_ERROR', rows: found } };
    }
    return { ...placed, message: `${placed.message}; ${found.length} orders with our note on the seller's orders page` };
  } catch (error) {
    return { ...placed, message: `${placed.message}; orders page lookup failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function fromSupplierError(error: unknown): Outcome {
  if (error instanceof SupplierCallError) {
    if (error.kind === 'PERMANENT') {
      return { outcome: 'REJECTED', reason: error.auth ? Reasons.SUPPLIER_AUTH_FAILED : Reasons.SUPPLIER_REJECTED, supplierCode: error.code, message: error.message };
    }
    return { outcome: error.kind === 'UNKNOWN' ? 'UNKNOWN' : 'NOT_PLACED', code: error.code, message: error.message };
  }
  return { outcome: 'UNKNOWN', code: 'UNEXPECTED', message: error instanceof Error ? error.message : String(error) };
}

/** Everything checked before money is spent. Reads only (the price check is recorded by the caller); safe to repeat. */
async function prepare(deps: FulfillmentDeps, f: Fulfillment, pinnedChannel?: PurchaseChannel): Promise<Preparation> {
  if (!f.shipTo) return { kind: 'review', reason: Reasons.INCOMPLETE_ADDRESS, message: 'the order has no complete shipping address' };
  // AliExpress requires `province` (zip is optional): refuse before spending a call (external-apis.md "Corrections")
  if (!f.shipTo.region?.trim()) {
    return { kind: 'review', reason: Reasons.INCOMPLETE_ADDRESS, message: 'the shipping address has no state/province, which AliExpress requires', details: { missing: 'province' } };
  }
  if (!f.saleAmount) return { kind: 'review', reason: Reasons.UNMAPPED_LISTING, message: 'the order has no sale amount' };
  const country = f.shipTo.countryCode;
  const mappings = await Promise.all(f.lines.map((line) => deps.sellers.mappingFor(f.sellerId, line.listingId, line.sku)));
  const unmapped = f.lines.filter((_, i) => !mappings[i]).map((l) => ({ lineId: l.lineId, listingId: l.listingId, sku: l.sku }));
  if (unmapped.length > 0) {
    return { kind: 'review', reason: Reasons.UNMAPPED_LISTING, message: `no supplier product mapped for ${unmapped.map((u) => u.listingId).join(', ')}`, details: { unmapped } };
  }
  const policy = await deps.sellers.policy(f.sellerId);
  const channels = new Set(mappings.map((m) => m!.purchaseChannel ?? policy?.purchaseChannel ?? 'API'));
  const channel: PurchaseChannel = pinnedChannel ?? (channels.has('BROWSER') ? 'BROWSER' : 'API');
  if (channel === 'BROWSER' && f.lines.length > 1) {
    return { kind: 'review', reason: Reasons.BROWSER_CHECKOUT_FAILED, message: 'the browser checkout buys one product per order; this order has several lines' };
  }
  const api = await deps.supplierFor(f.sellerId);
  if (!api) return { kind: 'review', reason: Reasons.SUPPLIER_CREDENTIALS_MISSING, message: 'the seller has no AliExpress API credentials (needed for price, payment and tracking checks)' };
  if (channel === 'BROWSER' && !(await deps.sellers.supplierSecrets(f.sellerId)).web) {
    return { kind: 'review', reason: Reasons.SUPPLIER_CREDENTIALS_MISSING, message: 'the browser channel needs the seller\'s supplier web login' };
  }

  const items: PlannedItem[] = [];
  let total: Money | undefined;
  const checked: Array<Record<string, unknown>> = [];
  try {
    for (const [i, line] of f.lines.entries()) {
      const mapping = mappings[i]!;
      // lesson 13: price, stock and freight for THIS order's destination
      const product = await api.getProduct(mapping.productId, country);
      if (!product.onSelling) return { kind: 'review', reason: Reasons.PRODUCT_UNAVAILABLE, message: `product ${mapping.productId} is not on sale`, details: { productId: mapping.productId } };
      const sku = product.skus.find((s) => s.skuAttr === mapping.skuAttr) ?? (mapping.skuAttr === '' && product.skus.length === 1 ? product.skus[0] : undefined);
      if (!sku) return { kind: 'review', reason: Reasons.PRODUCT_UNAVAILABLE, message: `product ${mapping.productId} no longer has SKU ${mapping.skuAttr}`, details: { productId: mapping.productId, skuAttr: mapping.skuAttr } };
      if (sku.stock < line.quantity) {
        return { kind: 'review', reason: Reasons.OUT_OF_STOCK, message: `only ${sku.stock} in stock for ${country}, ${line.quantity} needed`, details: { productId: mapping.productId, skuAttr: sku.skuAttr, stock: sku.stock, country } };
      }
      const unit = parseDecimal(sku.price, sku.currency);
      const options = await api.getFreight({ productId: mapping.productId, skuId: sku.skuId, quantity: line.quantity, shipToCountry: country });
      const option = mapping.logisticsServiceName
        ? options.find((o) => o.code === mapping.logisticsServiceName)
        : [...options].sort((a, b) => parseDecimal(a.fee || '0', a.currency || sku.currency).amountMinor - parseDecimal(b.fee || '0', b.currency || sku.currency).amountMinor)[0];
      if (!option) return { kind: 'review', reason: Reasons.PRODUCT_UNAVAILABLE, message: `no delivery option ${mapping.logisticsServiceName ?? ''} to ${country}`.trim(), details: { productId: mapping.productId, country } };
      const freight = parseDecimal(option.fee || '0', option.currency || sku.currency);
      if (freight.currency !== unit.currency) {
        return { kind: 'review', reason: Reasons.FX_RATE_MISSING, message: `freight in ${freight.currency} but product in ${unit.currency}`, details: { productId: mapping.productId } };
      }
      const lineCost = add(money(unit.amountMinor * line.quantity, unit.currency), freight);
      if (total && total.currency !== lineCost.currency) {
        return { kind: 'review', reason: Reasons.FX_RATE_MISSING, message: 'supplier lines are priced in different currencies' };
      }
      total = total ? add(total, lineCost) : lineCost;
      items.push({ productId: mapping.productId, skuId: sku.skuId, skuAttr: sku.skuAttr, quantity: line.quantity, logisticsServiceName: option.code || undefined });
      checked.push({ productId: mapping.productId, skuAttr: sku.skuAttr, unitPrice: sku.price, currency: sku.currency, stock: sku.stock, freight: option.fee, service: option.code, country });
    }
  } catch (error) {
    if (error instanceof SupplierCallError) {
      if (error.kind !== 'PERMANENT') return { kind: 'retry', code: error.code, message: error.message };
      if (error.auth) return { kind: 'review', reason: Reasons.SUPPLIER_AUTH_FAILED, message: error.message, supplierCode: error.code };
      return { kind: 'review', reason: Reasons.PRODUCT_UNAVAILABLE, message: error.message, supplierCode: error.code };
    }
    throw error;
  }

  const verdict = evaluatePriceGuard({
    supplierCost: total!,
    sale: f.saleAmount,
    fees: { marketplaceFee: f.marketplaceFee, paymentFee: f.paymentFee },
    policy: { minMarginBps: policy?.minMarginBps ?? deps.settings.defaultMinMarginBps, maxCost: policy?.maxCost ?? null, fxRates: policy?.fxRates ?? {} },
    approvedMax: f.approvedMax,
  });
  const priceCheck: PriceCheck = { outcome: verdict.ok ? 'PASSED' : verdict.reason, summary: { lines: checked, ...(verdict.ok ? verdict.checks : verdict.details) } };
  if (!verdict.ok) return { kind: 'review', reason: verdict.reason, message: verdict.message, details: verdict.details, priceCheck };

  const s = f.shipTo;
  const address: Record<string, string> = {};
  const put = (k: string, v: string | null | undefined) => {
    if (v && v.trim()) address[k] = v.trim();
  };
  put('full_name', s.fullName);
  put('contact_person', s.fullName);
  put('address', s.line1);
  put('address2', s.line2);
  put('city', s.city);
  put('province', s.region);
  put('zip', s.postalCode);
  put('country', s.countryCode);
  put('mobile_no', s.phone);
  return { kind: 'ready', api, plan: { channel, items, address, supplierCost: total! }, priceCheck };
}
