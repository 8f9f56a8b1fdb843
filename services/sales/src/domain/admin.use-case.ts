import type { SaleLedger } from './sale-ledger.use-case';
import { lockKeys, OrderStates, type CommercialTerms, type FxRate, type SalesStore } from './ports';

/**
 * Sets a seller's commission rate and marketplace fee schedule, then releases the seller's sales that were held for
 * missing terms (in the same transaction). Sales already recorded keep the terms they were recorded with.
 */
export async function setCommercialTerms(store: SalesStore, ledger: SaleLedger, terms: CommercialTerms): Promise<{ released: string[] }> {
  await store.advisoryLock(lockKeys.terms(terms.sellerId), 'exclusive'); // before any row lock, like the consumer
  await store.saveTerms(terms);
  const examined = await ledger.retryHeld(OrderStates.PENDING_TERMS, terms.sellerId, 'CommercialTermsUpdated');
  return { released: examined };
}

/**
 * Adds (or corrects) one dated rate, then re-examines sales waiting for a rate. Sales already recorded keep the rate
 * stored with them: a correction never rewrites the ledger.
 */
export async function setFxRate(store: SalesStore, ledger: SaleLedger, rate: FxRate): Promise<{ examined: string[] }> {
  await store.advisoryLock(lockKeys.fxRates, 'exclusive');
  await store.saveFxRate(rate);
  const examined = await ledger.retryHeld(OrderStates.AWAITING_FX_RATE, undefined, 'FxRateUpdated');
  return { examined };
}
