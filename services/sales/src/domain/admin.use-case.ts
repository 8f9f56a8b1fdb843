import { retryHeld } from './sale-ledger.use-case';
import { lockKeys, OrderStates, type AuditContext, type CommercialTerms, type FxRate, type SalesDeps } from './ports';

/**
 * Sets a seller's commission rate and marketplace fee schedule, then releases the seller's sales that were held for
 * missing terms (in the same transaction). Sales already recorded keep the terms they were recorded with.
 */
export async function setCommercialTerms(deps: SalesDeps, terms: CommercialTerms, audit: AuditContext): Promise<{ released: string[] }> {
  const { store } = deps;
  return store.transaction(async (trx) => {
    await store.advisoryLock(trx, lockKeys.terms(terms.sellerId), 'exclusive'); // before any row lock, like the consumer
    const before = await store.findTerms(terms.sellerId, trx);
    await store.saveTerms(trx, terms);
    await store.recordAudit(trx, { ...audit, action: 'PUT_COMMERCIAL_TERMS', target: `seller:${terms.sellerId}`, before: before ?? null, after: terms });
    const examined = await retryHeld(deps, trx, OrderStates.PENDING_TERMS, terms.sellerId, 'CommercialTermsUpdated');
    return { released: examined };
  });
}

/**
 * Adds (or corrects) one dated rate, then re-examines sales waiting for a rate. Sales already recorded keep the rate
 * stored with them: a correction never rewrites the ledger.
 */
export async function setFxRate(deps: SalesDeps, rate: FxRate, audit: AuditContext): Promise<{ examined: string[] }> {
  const { store } = deps;
  return store.transaction(async (trx) => {
    await store.advisoryLock(trx, lockKeys.fxRates, 'exclusive');
    await store.saveFxRate(trx, rate);
    await store.recordAudit(trx, { ...audit, action: 'PUT_FX_RATE', target: `fx:${rate.from}:${rate.to}:${rate.rateDate}`, after: rate });
    const examined = await retryHeld(deps, trx, OrderStates.AWAITING_FX_RATE, undefined, 'FxRateUpdated');
    return { examined };
  });
}

/** A seller's commercial terms, if any were set. */
export async function commercialTerms(deps: SalesDeps, sellerId: string): Promise<CommercialTerms | undefined> {
  return deps.store.findTerms(sellerId);
}

/** The admin writes, newest first, with who made them and why. */
export async function auditTrail(deps: SalesDeps, filter: { target?: string; limit: number }) {
  return (await deps.reports.audit(filter)).map((a) => ({ ...a, at: a.at.toISOString() }));
}
