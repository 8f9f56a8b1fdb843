import { createDeliveryJobs, inOrderPerOrder } from '../../src/domain/work-deliveries.use-case';
import type { DeliveryStore } from '../../src/domain/ports';
import type { DeliveryProcessor } from '../../src/domain/process-delivery.use-case';
import type { Delivery } from '../../src/domain/records';

const delivery = (id: string, externalOrderId: string | null): Delivery => ({
  id, marketplace: 'EBAY', kind: 'ebay.order', dedupeKey: id, accountId: 'busy-seller', externalOrderId, orderId: null, status: 'pending',
  reason: null, detail: null, headers: {}, rawBody: '{}', sourceIp: null, attempts: 0, receivedAt: new Date(), nextAttemptAt: new Date(),
  processedAt: null, statusChangedAt: new Date(), fence: 1,
});

/** One busy account's claimed deliveries: its orders are read side by side, each order's deliveries in order. */
describe('delivery lanes within one account', () => {
  it('groups by order, keeping the order in which each order\'s deliveries were claimed', () => {
    const ds = [delivery('a1', 'A'), delivery('b1', 'B'), delivery('a2', 'A'), delivery('c1', 'C'), delivery('b2', 'B')];
    expect(inOrderPerOrder(ds).map((lane) => lane.map((d) => d.id))).toEqual([['a1', 'a2'], ['b1', 'b2'], ['c1']]);
  });

  it('keeps everything in one lane, as claimed, when a delivery names no order (it could concern any of them)', () => {
    const ds = [delivery('a1', 'A'), delivery('x', null), delivery('b1', 'B')];
    expect(inOrderPerOrder(ds).map((lane) => lane.map((d) => d.id))).toEqual([['a1', 'x', 'b1']]);
    expect(inOrderPerOrder([])).toEqual([]);
  });

  it('when the job runs, then two orders\' reads are in flight at once, an order\'s second delivery waits for its first, and a failure is the job\'s after every lane ends', async () => {
    const started: string[] = [];
    const gates = new Map<string, () => void>();
    const processor = {
      process: (d: Delivery) => {
        started.push(d.id);
        return new Promise<never>((resolve, reject) => gates.set(d.id, () => (d.id === 'b1' ? reject(new Error('b1 failed')) : resolve(undefined as never))));
      },
    } as unknown as DeliveryProcessor;
    const jobs = createDeliveryJobs({ deliveries: {} as DeliveryStore, processor, batch: 8, perAccount: 4 });
    const run = jobs.run({ account: 'EBAY:busy-seller', deliveries: [delivery('a1', 'A'), delivery('a2', 'A'), delivery('b1', 'B')], fence: 1 });
    const settled = run.then(() => 'done', (error: Error) => error.message);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a1', 'b1']); // side by side; a2 waits for a1
    gates.get('b1')!();
    gates.get('a1')!();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a1', 'b1', 'a2']);
    gates.get('a2')!();
    expect(await settled).toBe('b1 failed');
  });
});

/** The delivery worker taking a notification as it is stored (claim at creation), one account at a time. */
describe('hand-over of a stored delivery to the delivery worker', () => {
  /** a worker's `reserve` with `free` slots, recording what it was handed */
  const workerWith = (free: number) => {
    const handed: Array<{ account: string; ids: string[]; fence: number }> = [];
    let released = 0;
    return {
      handed,
      released: () => released,
      reserve: () => (free-- > 0 ? {
        run: (job: { account: string; deliveries: Delivery[]; fence: number }) => handed.push({ account: job.account, ids: job.deliveries.map((d) => d.id), fence: job.fence }),
        release: () => void released++,
      } : undefined),
    };
  };
  const idle = { process: async () => ({ status: 'accepted', reason: null, orderId: null }) } as unknown as DeliveryProcessor;

  it('hands the stored delivery over as its account\'s job, with the fence it was stored with', () => {
    const jobs = createDeliveryJobs({ deliveries: {} as DeliveryStore, processor: idle, batch: 8, perAccount: 4 });
    const worker = workerWith(2);
    const handOver = jobs.handOver(worker, { marketplace: 'EBAY', accountId: 'busy-seller' }, 60_000)!;
    handOver.stored({ ...delivery('d1', 'A'), fence: 0 });
    expect(worker.handed).toEqual([{ account: 'EBAY:busy-seller', ids: ['d1'], fence: 0 }]);
  });

  it('takes nothing while the account is being worked here (its deliveries stay in order), and the account again once released', () => {
    const jobs = createDeliveryJobs({ deliveries: {} as DeliveryStore, processor: idle, batch: 8, perAccount: 4 });
    const worker = workerWith(3);
    const first = jobs.handOver(worker, { marketplace: 'EBAY', accountId: 'busy-seller' }, 60_000)!;
    expect(jobs.handOver(worker, { marketplace: 'EBAY', accountId: 'busy-seller' }, 60_000)).toBeUndefined();
    // another account is not held up by it
    expect(jobs.handOver(worker, { marketplace: 'MERCADOLIBRE', accountId: '123' }, 60_000)).toBeDefined();
    first.release(); // a duplicate: nothing was stored
    expect(worker.released()).toBe(1);
    expect(jobs.handOver(worker, { marketplace: 'EBAY', accountId: 'busy-seller' }, 60_000)).toBeDefined();
    expect(worker.handed).toEqual([]);
  });

  it('takes nothing when the worker has no slot free: the delivery is stored due and claimed the usual way', () => {
    const jobs = createDeliveryJobs({ deliveries: {} as DeliveryStore, processor: idle, batch: 8, perAccount: 4 });
    expect(jobs.handOver(workerWith(0), { marketplace: 'EBAY', accountId: 'busy-seller' }, 60_000)).toBeUndefined();
  });

  it('keeps the account out of its own claims until the handed-over job ends', async () => {
    const claims: Array<string[] | undefined> = [];
    const deliveries = { claimBatch: async (_ms: number, _limit: number, _per: number, options: { exclude?: string[] }) => {
      claims.push(options.exclude);
      return [];
    } } as unknown as DeliveryStore;
    const jobs = createDeliveryJobs({ deliveries, processor: idle, batch: 8, perAccount: 4 });
    const worker = workerWith(1);
    const handOver = jobs.handOver(worker, { marketplace: 'EBAY', accountId: 'busy-seller' }, 60_000)!;
    await jobs.store.claim(1, 1000);
    handOver.stored(delivery('d1', 'A'));
    await jobs.run({ account: 'EBAY:busy-seller', deliveries: [delivery('d1', 'A')], fence: 1 });
    await jobs.store.claim(1, 1000);
    expect(claims).toEqual([['EBAY:busy-seller'], []]);
  });
});
