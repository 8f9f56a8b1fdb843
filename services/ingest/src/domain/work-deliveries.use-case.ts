import type { JobStore, JobWorker, LeasedJob } from '@postsale/runtime';
import type { DeliveryStore } from './ports';
import type { DeliveryProcessor } from './process-delivery.use-case';
import type { Delivery } from './records';

/** One account's claimed deliveries: one job of the runtime's job worker (each order's deliveries in order). */
export interface AccountDeliveries extends LeasedJob {
  account: string;
  deliveries: Delivery[];
}

const accountOf = (d: Pick<Delivery, 'marketplace' | 'accountId'>) => `${d.marketplace}:${d.accountId ?? ''}`;

/**
 * One account's claimed deliveries as lanes that may run side by side: each order's deliveries stay in order in one
 * lane (a cancellation after its order), different orders do not wait for each other — a busy seller is not limited
 * to one marketplace read at a time. A delivery that names no order (known only once read) could concern any of
 * them: then the account's deliveries keep to one lane, in order, as they came.
 */
export function inOrderPerOrder(deliveries: Delivery[]): Delivery[][] {
  if (deliveries.some((d) => !d.externalOrderId)) return deliveries.length ? [deliveries] : [];
  const lanes = new Map<string, Delivery[]>();
  for (const d of deliveries) lanes.set(d.externalOrderId!, [...(lanes.get(d.externalOrderId!) ?? []), d]);
  return [...lanes.values()];
}

/**
 * The delivery worker's jobs: the fair claim (round-robin over accounts, at most `perAccount` each; see
 * DeliveriesRepository.claimBatch) hands each free slot of the worker's pool one account's oldest due deliveries.
 * Accounts are worked side by side, and within an account its orders (`inOrderPerOrder`); an account being worked
 * here is not claimed again until its job ends, so a later delivery of an order never overtakes an earlier one.
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
    /**
     * Claim at creation for a delivery about to be stored for the worker (eBay, MercadoLibre): when `worker` has a free
     * slot and the delivery's account is not being worked here (its deliveries stay in order), the slot is held and the
     * delivery is stored claimed for `leaseMs` (the worker's lease); `stored` then hands it to the slot as the account's
     * job — no claim of its own. Undefined: store it due, as usual. `release` when nothing was stored (a duplicate, a
     * drop, a failure).
     */
    handOver(worker: Pick<JobWorker<AccountDeliveries>, 'reserve'>, delivery: Pick<Delivery, 'marketplace' | 'accountId'>, leaseMs: number) {
      const account = accountOf(delivery);
      if (working.has(account)) return undefined;
      const slot = worker.reserve();
      if (!slot) return undefined;
      working.add(account); // not claimed here meanwhile; `run` lets it go when the job ends
      return {
        claimMs: leaseMs,
        stored(stored: Delivery) {
          slot.run({ account, deliveries: [stored], fence: stored.fence });
        },
        release() {
          working.delete(account);
          slot.release();
        },
      };
    },
    async run(job: AccountDeliveries): Promise<void> {
      try {
        // every lane runs to its end (the account is released only then); the first failure is the job's
        const lanes = await Promise.allSettled(inOrderPerOrder(job.deliveries).map(async (sameOrder) => {
          for (const d of sameOrder) await deps.processor.process(d);
        }));
        const failed = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected');
        if (failed) throw failed.reason;
      } finally {
        working.delete(job.account);
      }
    },
    /** the slots a worker needs to hold a full claim of `batch` deliveries */
    concurrency: Math.max(1, Math.ceil(deps.batch / deps.perAccount)),
  };
}
