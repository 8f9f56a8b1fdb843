import { formatDecimal } from '@postsale/contracts';
import type { PayoutsContext } from './context';
import { choosePayoutCurrency, convertRoundingDown, utcDay } from './payout-currency';
import { decideRelease, isPayPalRefusal, parseReleasePolicy, partyOf, type Recipient, type ReleaseDecision, type ReleasePolicy } from './payout-rules';
import type { Tx } from './ports';
import type { FxRate, Intent, Milestones, Payee, PayoutTerms } from './records';

/** What an intent will be paid in and when: release decision + payout currency + pinned rate (or SKIPPED). */
export type PayoutDecision = (ReleaseDecision | { status: 'SKIPPED'; holdReason: null; releaseAt: null }) & PayoutTerms & { skipReason: string | null };

const NO_TERMS: PayoutTerms = { payoutCurrency: null, fxRate: null, fxRateDate: null, fxSource: null };
const DAY_MS = 24 * 3600 * 1000;

/**
 * What decisions read, each read at most once per use case: the seller's payee, the order's milestones and FX rates.
 * A sale's two intents (or a batch's intents) share them: one read instead of one per intent. Made for one
 * transaction by a use case whose decisions may share reads — after its own writes to payees or milestones; every
 * other decision gets fresh facts of its own.
 */
export interface DecisionFacts {
  /** the payee and the milestones an intent is decided on (one statement when neither is known yet) */
  of(sellerId: string, orderId: string): Promise<{ payee: Payee | undefined; milestones: Milestones }>;
  payee(sellerId: string): Promise<Payee | undefined>;
  fxRate(from: string, to: string, onOrBefore: string, notBefore: string): Promise<FxRate | undefined>;
  /** reads these sellers' payees in one statement (a batch about to pay them) */
  loadPayees(sellerIds: string[]): Promise<void>;
}

/** A memoised read nobody may await (the transaction failed before it was needed) must not be an unhandled rejection. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export function decisionFacts(ctx: PayoutsContext, trx: Tx): DecisionFacts {
  const { store } = ctx;
  const payees = new Map<string, Promise<Payee | undefined>>();
  const milestones = new Map<string, Promise<Milestones>>();
  const rates = new Map<string, Promise<FxRate | undefined>>();
  const once = <T>(memo: Map<string, Promise<T>>, key: string, read: () => Promise<T>): Promise<T> => {
    if (!memo.has(key)) memo.set(key, read());
    return memo.get(key)!;
  };
  return {
    async of(sellerId, orderId) {
      if (!payees.has(sellerId) && !milestones.has(orderId)) {
        const both = store.payeeAndMilestones(sellerId, orderId, trx);
        payees.set(sellerId, handled(both.then((b) => b.payee)));
        milestones.set(orderId, handled(both.then((b) => b.milestones)));
      }
      return {
        payee: await once(payees, sellerId, () => store.payee(sellerId, trx)),
        milestones: await once(milestones, orderId, () => store.milestones(orderId, trx)),
      };
    },
    payee: (sellerId) => once(payees, sellerId, () => store.payee(sellerId, trx)),
    fxRate: (from, to, onOrBefore, notBefore) =>
      once(rates, [from, to, onOrBefore, notBefore].join(' '), () => store.findFxRate(from, to, onOrBefore, notBefore, trx)),
    async loadPayees(sellerIds) {
      const missing = [...new Set(sellerIds)].filter((id) => !payees.has(id));
      if (missing.length === 0) return;
      const found = store.payees(missing, trx);
      for (const id of missing) payees.set(id, handled(found.then((all) => all.find((p) => p.sellerId === id))));
    },
  };
}

// The decisions every payout use case shares, inside the caller's transaction: when and in what an unpaid intent is
// paid, re-deciding it after a change, scheduling a retry, and recording a clawback.

/**
 * Decides an unpaid intent. Payout currency: see choosePayoutCurrency. When it differs from the sale's currency the
 * rate is the most recent one from sale currency to payout currency dated on or before the UTC day the sale was
 * recorded, and at most PAYOUTS_FX_MAX_RATE_AGE_DAYS older than that day; none → HELD FX_RATE_MISSING. An amount
 * that converts to less than one payable unit → SKIPPED with the reason (nothing PayPal could send).
 */
export async function decideIntent(ctx: PayoutsContext, trx: Tx, i: {
  recipient: Recipient; sellerId: string; orderId: string; saleRecordedAt: Date; currency: string; payableMinor: number;
}, facts: DecisionFacts = decisionFacts(ctx, trx)): Promise<PayoutDecision> {
  const { settings } = ctx;
  const { payee, milestones } = await facts.of(i.sellerId, i.orderId);
  const policy: ReleasePolicy = payee
    ? parseReleasePolicy(payee.releasePolicy === 'after_delivery_plus_days' ? `after_delivery_plus_days:${payee.releaseDelayDays}` : payee.releasePolicy)
    : settings.defaultReleasePolicy;
  const payeeKnown = i.recipient === 'PLATFORM' ? Boolean(settings.platformPayeeEmail) : Boolean(payee);
  let terms = NO_TERMS;
  let fxRateKnown = true;
  if (payeeKnown) {
    const payoutCurrency = choosePayoutCurrency({
      recipient: i.recipient, saleCurrency: i.currency, payeeChoice: payee?.payoutCurrency ?? null,
      platformCurrency: settings.platformPayoutCurrency, defaultCurrency: settings.defaultPayoutCurrency,
    });
    terms = { ...NO_TERMS, payoutCurrency };
    if (payoutCurrency !== i.currency) {
      const saleDay = utcDay(i.saleRecordedAt);
      const oldest = utcDay(new Date(i.saleRecordedAt.getTime() - settings.fxMaxRateAgeDays * DAY_MS));
      const rate = await facts.fxRate(i.currency, payoutCurrency, saleDay, oldest);
      if (rate) terms = { payoutCurrency, fxRate: rate.rate, fxRateDate: rate.rateDate, fxSource: rate.source };
      else fxRateKnown = false;
    }
  }
  const release = decideRelease({ recipient: i.recipient, payeeKnown, fxRateKnown, policy, saleRecordedAt: i.saleRecordedAt, ...milestones });
  if (terms.payoutCurrency && fxRateKnown && i.payableMinor > 0
    && convertRoundingDown(i.payableMinor, i.currency, terms.payoutCurrency, terms.fxRate ?? '1') === 0) {
    const owed = `${formatDecimal({ amountMinor: i.payableMinor, currency: i.currency })} ${i.currency}`;
    const skipReason = `CONVERTS_TO_ZERO: ${owed} is less than one payable unit of ${terms.payoutCurrency}`
      + (terms.fxRate ? ` at ${terms.fxRate} (${terms.fxRateDate})` : '') + '; nothing PayPal could send';
    return { status: 'SKIPPED', holdReason: null, releaseAt: null, ...terms, skipReason };
  }
  return { ...release, ...terms, skipReason: null };
}

/** Decides these intents again; returns how many changed and how many are now due to be paid. */
export async function reevaluateIntents(
  ctx: PayoutsContext, trx: Tx, intents: Intent[], cause: string, facts?: DecisionFacts,
): Promise<{ changed: number; due: number }> {
  let changed = 0;
  let due = 0;
  for (const intent of intents) {
    if (intent.status === 'HELD' && isPayPalRefusal(intent.holdReason)) continue; // released by an operator's retry only
    const d = await decideIntent(ctx, trx, intent, facts);
    const sameRelease = (d.releaseAt?.getTime() ?? null) === (intent.releaseAt?.getTime() ?? null);
    const sameTerms = d.payoutCurrency === intent.payoutCurrency && d.fxRate === intent.fxRate && d.fxRateDate === intent.fxRateDate && d.fxSource === intent.fxSource;
    if (d.status === intent.status && d.holdReason === intent.holdReason && sameRelease && sameTerms) continue;
    const updated = await ctx.store.updateIntent(trx, intent, d, describeDecision(cause, d));
    changed += 1;
    if (isDueNow(updated)) due += 1;
  }
  return { changed, due };
}

/** Re-decides one unpaid intent now (the batcher, for an intent whose payout currency or rate is not usable). */
export async function redecideIntent(ctx: PayoutsContext, trx: Tx, intent: Intent, cause: string, facts?: DecisionFacts): Promise<Intent> {
  const d = await decideIntent(ctx, trx, intent, facts);
  return ctx.store.updateIntent(trx, intent, d, describeDecision(cause, d));
}

/** Pays the intent again under attempt + 1, not before `at`. */
export async function scheduleRetry(ctx: PayoutsContext, trx: Tx, intent: Intent, at: Date, cause: string): Promise<Intent> {
  const d = await decideIntent(ctx, trx, intent);
  const releaseAt = d.status === 'DUE' && d.releaseAt.getTime() > at.getTime() ? d.releaseAt : at;
  return ctx.store.updateIntent(trx, intent, {
    attempt: intent.attempt + 1,
    batchId: null,
    ...d,
    ...(d.status === 'DUE' ? { releaseAt } : {}),
  }, describeDecision(`${cause}: attempt ${intent.attempt + 1}`, d));
}

/** What was paid and is now reversed: the payee owes it back, netted against its next payouts in this currency. */
export async function recordClawback(ctx: PayoutsContext, trx: Tx, intent: Intent, amountMinor: number, reference: string): Promise<void> {
  const party = partyOf(intent.recipient, intent.sellerId);
  await ctx.store.lockBalance(trx, party, intent.currency);
  await ctx.store.addBalanceEntry(trx, {
    party, currency: intent.currency, amountMinor: -amountMinor, kind: 'CLAWBACK', orderId: intent.orderId, intentId: intent.id, reference,
  });
  ctx.metrics.clawbacks.inc({ currency: intent.currency, recipient: intent.recipient }, amountMinor);
}

/** DUE with a release time that has passed: the next batching run takes it. */
export function isDueNow(intent: Pick<Intent, 'status' | 'releaseAt'>, now = Date.now()): boolean {
  return intent.status === 'DUE' && (intent.releaseAt === null || intent.releaseAt.getTime() <= now);
}

export function describeDecision(cause: string, d: PayoutDecision): string {
  const fx = d.fxRate ? `; paid in ${d.payoutCurrency} at ${d.fxRate} (rate of ${d.fxRateDate}, ${d.fxSource})` : d.payoutCurrency ? `; paid in ${d.payoutCurrency}` : '';
  if (d.status === 'SKIPPED') return `${cause}; skipped: ${d.skipReason}`;
  return cause + (d.holdReason ? `; held: ${d.holdReason}` : '; due') + fx;
}
