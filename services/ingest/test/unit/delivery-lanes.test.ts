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
