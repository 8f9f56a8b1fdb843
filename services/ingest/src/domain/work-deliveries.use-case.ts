import type { JobStore, LeasedJob } from '@postsale/runtime';
import type { DeliveryStore } from './ports';
import type { DeliveryProcessor } from './process-delivery.use-case';
import type { Delivery } from './records';

/** One account's claimed deliveries: worked in order, as one job of the runtime's job worker. */
export interface AccountDeliveries extends LeasedJob {
  account: string;
  deliveries: Delivery[];
}

const accountOf = (d: Delivery) => `${d.marketplace}:${d.accountId ?? ''}`;

/**
 * The delivery worker's jobs: the fair claim (round-robin over accounts, at most `perAccount` each; see
 * DeliveriesRepository.claimBatch) hands each free slot of the worker's pool one account's oldest due deliveries.
 * Accounts are worked side by side, one account's deliveries in order: an account being worked here is not claimed
 * again until its job ends.
 */
export function createDeliveryJobs(deps: { deliveries: DeliveryStore; processor: DeliveryProcessor; batch: number; perAccount: number }) {
  const working = new Set<string>();
  const store: JobStore<AccountDeliveries> = {
    async claim(free, leaseMs) {
      const claimed = await deps.deliveries.claimBatch(leaseMs, Math.min(deps.batch, free * deps.perAccount), deps.perAccount, { maxAccounts: free, exclude: [...working] });
      const byAccount = new Map<string, Delivery[]>();
      for (const d of claimed) byAccount.set(accountOf(d), [...(byAccount.get(accountOf(d)) ?? []), d]);
      return [...byAccount].map(([account, deliveries]) => {
        working.add(account);
        return { account, deliveries, fence: deliveries[0]!.fence };
      });
    },
  };
  return {
    store,
    async run(job: AccountDeliveries): Promise<void> {
      try {
        for (const d of job.deliveries) await deps.processor.process(d);
      } finally {
        working.delete(job.account);
      }
    },
    /** the slots a worker needs to hold a full claim of `batch` deliveries */
    concurrency: Math.max(1, Math.ceil(deps.batch / deps.perAccount)),
  };
}
