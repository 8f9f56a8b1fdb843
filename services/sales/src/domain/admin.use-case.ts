import type { SaleLedger } from './sale-ledger.use-case';
import { lockKeys, OrderStates, type AuditContext, type CommercialTerms, type FxRate, type SalesStore } from './ports';

/**
 * Sets a seller's commission rate and marketplace fee schedule, then releases the seller's sales that were held for
 * missing terms (in the same transaction). Sales already recorded keep the terms they were recorded with.
 */
export async function setCommercialTerms(store: SalesStore, ledger: SaleLedger, terms: CommercialTerms, audit: AuditContext): Promise<{ released: string[] }> {
  await store.advisoryLock(lockKeys.terms(terms.sellerId), 'exclusive'); // before any row lock, like the consumer
  const before = await store.findTerms(terms.sellerId);
  await store.saveTerms(terms);
  await store.recordAudit({ ...audit, action: 'PUT_COMMERCIAL_TERMS', target: `seller:${terms.sellerId}`, before: before ?? null, after: terms });
  const examined = await ledger.retryHeld(OrderStates.PENDING_TERMS, terms.sellerId, 'CommercialTermsUpdated');
  return { released: examined };
}

/**
 * Adds (or corrects) one dated rate, then re-examines sales waiting for a rate. Sales already recorded keep the rate
 * stored with them: a correction never rewrites the ledger.
 */
export async function setFxRate(store: SalesStore, ledger: SaleLedger, rate: FxRate, audit: AuditContext): Promise<{ examined: string[] }> {
  await store.advisoryLock(lockKeys.fxRates, 'exclusive');
  await store.saveFxRate(rate);
  await store.recordAudit({ ...audit, action: 'PUT_FX_RATE', target: `fx:${rate.from}:${rate.to}:${rate.rateDate}`, after: rate });
  const examined = await ledger.retryHeld(OrderStates.AWAITING_FX_RATE, undefined, 'FxRateUpdated');
  return { examined };
}

/** The admin writes, newest first, with who made them and why. */
export async function auditTrail(store: SalesStore, filter: { target?: string; limit: number }) {
  return (await store.audit(filter)).map((a) => ({ ...a, at: a.at.toISOString() }));
}
