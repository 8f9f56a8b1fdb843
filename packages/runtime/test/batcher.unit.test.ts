import { createBatcher, createLogger, Metrics } from '../src';

const deferred = () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { released, release };
};

describe('group commit batcher', () => {
  const make = (options: { maxBatch: number; maxInFlight: number; lingerMs?: number; run?: (items: number[]) => Promise<string[]>; runOne?: (item: number) => Promise<string> }) => {
    const batches: number[][] = [];
    const singles: number[] = [];
    const batcher = createBatcher<number, string>({
      name: 'test', maxBatch: options.maxBatch, maxInFlight: options.maxInFlight, lingerMs: options.lingerMs ?? 0,
      run: async (items) => {
        batches.push(items);
        return options.run ? options.run(items) : items.map((i) => `r${i}`);
      },
      runOne: async (item) => {
        singles.push(item);
        return options.runOne ? options.runOne(item) : `one${item}`;
      },
      logger: createLogger('batcher-test', 'silent'), metrics: new Metrics('batcher-test', { defaultMetrics: false }),
    });
    return { batcher, batches, singles };
  };

  it('when items are submitted in the same turn, then they go as one batch and each caller gets its own result', async () => {
    const { batcher, batches } = make({ maxBatch: 10, maxInFlight: 1 });
    expect(await Promise.all([1, 2, 3].map((i) => batcher.submit(i)))).toEqual(['r1', 'r2', 'r3']);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('when more than maxBatch wait, then batches hold at most maxBatch', async () => {
    const { batcher, batches } = make({ maxBatch: 2, maxInFlight: 4 });
    await Promise.all([1, 2, 3, 4, 5].map((i) => batcher.submit(i)));
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('when an item has waited elsewhere already (its own shorter linger), then the batch goes when that wait ends, carrying the items that were lingering', async () => {
    const { batcher, batches } = make({ maxBatch: 10, maxInFlight: 1, lingerMs: 60_000 });
    const lingering = batcher.submit(1);
    const settled = Promise.race([lingering.then(() => 'sent'), new Promise((r) => setImmediate(() => r('still lingering')))]);
    expect(await settled).toBe('still lingering');
    // an item whose wait is over: the batch goes on the next turn, not in a minute
    expect(await Promise.all([lingering, batcher.submit(2, { lingerMs: 0 })])).toEqual(['r1', 'r2']);
    expect(batches).toEqual([[1, 2]]);
    // a longer own wait than the batcher's is cut to the batcher's: never later than lingerMs after the first item
    const quick = make({ maxBatch: 10, maxInFlight: 1, lingerMs: 1 });
    expect(await quick.batcher.submit(3, { lingerMs: 60_000 })).toBe('r3');
  });

  it('when every batch slot is busy, then arrivals wait and go together as the next batch', async () => {
    const gate = deferred();
    let calls = 0;
    const { batcher, batches } = make({ maxBatch: 100, maxInFlight: 1, run: async (items) => {
      if (calls++ === 0) await gate.released;
      return items.map((i) => `r${i}`);
    } });
    const first = batcher.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = [2, 3, 4].map((i) => batcher.submit(i));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches).toEqual([[1]]); // nothing more while the one slot is out
    gate.release();
    expect(await Promise.all([first, ...later])).toEqual(['r1', 'r2', 'r3', 'r4']);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('when a batch fails or miscounts its results, then nobody is answered from it and each item runs on its own', async () => {
    const failing = make({ maxBatch: 10, maxInFlight: 1, run: async () => { throw new Error('one bad row'); }, runOne: async (i) => {
      if (i === 2) throw new Error('bad row');
      return `one${i}`;
    } });
    const settled = await Promise.allSettled([1, 2, 3].map((i) => failing.batcher.submit(i)));
    expect(settled).toEqual([{ status: 'fulfilled', value: 'one1' }, { status: 'rejected', reason: new Error('bad row') }, { status: 'fulfilled', value: 'one3' }]);
    expect(failing.singles.sort()).toEqual([1, 2, 3]);

    const short = make({ maxBatch: 10, maxInFlight: 1, run: async (items) => items.slice(1).map((i) => `r${i}`) });
    expect(await Promise.all([1, 2].map((i) => short.batcher.submit(i)))).toEqual(['one1', 'one2']);
  });

  it('when a lone item fails, then its caller gets the error (not run twice)', async () => {
    const { batcher, singles } = make({ maxBatch: 10, maxInFlight: 1, run: async () => { throw new Error('down'); } });
    await expect(batcher.submit(1)).rejects.toThrow('down');
    expect(singles).toEqual([]);
  });

  it('when a linger is set, then items submitted within it share a batch', async () => {
    const { batcher, batches } = make({ maxBatch: 10, maxInFlight: 1, lingerMs: 30 });
    const a = batcher.submit(1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all([a, batcher.submit(2)]);
    expect(batches).toEqual([[1, 2]]);
  });
});
