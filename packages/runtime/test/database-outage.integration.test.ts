import { randomUUID } from 'node:crypto';
import { dlqTopicName, Streams } from '@postsale/contracts';
import { createDb, localInfraEnv, startService, type Db, type RunningService } from '../src';
import { dropSchema, testEnv, waitFor, startTcpProxy, type TcpProxy } from '../src/testing';
import { fixtureService } from './fixture-service';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };
const APPLICATION_NAME = `outage-${Date.now()}`;
const OUTAGE_MS = 15_000;

/** Sum of a counter's samples whose labels match. */
async function counter(service: RunningService, name: string, labels: RegExp = /.*/): Promise<number> {
  const text = await service.ctx.metrics.registry.getSingleMetricAsString(name);
  return text
    .split('\n')
    .filter((line) => line.startsWith(name) && labels.test(line))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

describe('a database outage while events flow', () => {
  let proxy: TcpProxy;
  let env: Record<string, string>;
  let service: RunningService | undefined;
  let direct: Db | undefined;

  beforeAll(async () => {
    const real = new URL(localInfraEnv().DATABASE_URL!);
    proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(real);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    viaProxy.searchParams.set('application_name', APPLICATION_NAME); // to see when its backends are gone
    env = testEnv('dbout', { DATABASE_URL: viaProxy.toString() });
    service = await startService(fixtureService, env);
    // The test's own connection bypasses the proxy: it writes and checks while the service cannot reach Postgres.
    direct = createDb({ url: real.toString(), schema: env.DB_SCHEMA!, poolMax: 2 });
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => undefined);
    await service?.stop();
    await direct?.destroy();
    await proxy?.close();
    if (env) await dropSchema(env.DB_SCHEMA!);
  });

  /** What a producing use case does: state change and event in one transaction. */
  async function recordDirectly(count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, () => `o-${randomUUID()}`);
    await direct!.transaction(async (trx) => {
      for (const orderId of ids) {
        await trx('things').insert({ id: orderId });
        await service!.ctx.outbox.publish(trx, Streams.orders, {
          eventId: randomUUID(), orderId, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
          type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: orderId, reason: 'test', cancelledAt: Date.now() },
        });
      }
    });
    return ids;
  }

  const post = (orderId: string) =>
    fetch(`${service!.url}/things`, { method: 'POST', headers: { 'content-type': 'application/json', ...ADMIN }, body: JSON.stringify({ orderId }) });
  const count = async (table: string) => Number((await direct!(table).count<{ n: string }[]>('* as n'))[0]!.n);

  it('Postgres unreachable for 15 s mid-flow: the service recovers by itself, 0 dead letters, every effect exactly once', async () => {
    // Orders flow through the service's API...
    const acknowledged: string[] = [];
    let posting = true;
    const poster = (async () => {
      while (posting) {
        const orderId = `o-${randomUUID()}`;
        const response = await post(orderId).catch(() => undefined);
        if (response?.status === 201) acknowledged.push(orderId);
      }
    })();
    await waitFor(async () => (await count('effects')) >= 20, { timeoutMs: 30_000, description: 'orders flowing end to end' });

    // ...and a burst lands in Kafka; the database goes away while the consumer is in the middle of it.
    const burst = await recordDirectly(100);
    await waitFor(async () => (await direct!('effects').whereIn('order_id', burst).first()) !== undefined, {
      timeoutMs: 20_000, intervalMs: 5, description: 'the burst being consumed',
    });
    await proxy.cut();
    const cutAt = Date.now();
    posting = false;
    await poster;
    // A COMMIT forwarded just before the cut still completes in Postgres: count once the service's backends are gone.
    await waitFor(async () => Number((await direct!.raw('select count(*)::int as n from pg_stat_activity where application_name = ?', [APPLICATION_NAME])).rows[0].n) === 0, {
      timeoutMs: 10_000, description: "the service's Postgres backends ending after the cut",
    });
    const effectsAtCut = await count('effects');
    expect(effectsAtCut).toBeLessThan(await count('things')); // the outage interrupts work in flight

    // During the outage: the API refuses with a retriable 503, nothing is applied, and new events still get written
    // (as by a process that can reach the database) for the relay to find when it is back.
    const refused = await post(`o-${randomUUID()}`);
    expect(refused.status).toBe(503);
    expect((await refused.json()).error.code).toBe('UNAVAILABLE');
    const duringOutage = await recordDirectly(50);
    await waitFor(async () => (await counter(service!, 'events_retried_total', /code="(CONNECTION_FAILED|DB_UNAVAILABLE|DB_TIMEOUT)"/)) > 0, {
      timeoutMs: OUTAGE_MS, description: 'the consumer retrying against the unreachable database',
    });
    await waitFor(async () => (await counter(service!, 'outbox_publish_failures_total')) > 0, {
      timeoutMs: OUTAGE_MS, description: 'the relay failing against the unreachable database',
    });
    await waitFor(() => Date.now() - cutAt >= OUTAGE_MS, { timeoutMs: OUTAGE_MS + 1_000, intervalMs: 250, description: 'the outage to last 15 s' });
    expect(await count('effects')).toBe(effectsAtCut);
    expect(await counter(service!, 'events_dead_lettered_total')).toBe(0);
    await proxy.restore();

    // Back without a restart or an operator: the API accepts again and everything drains.
    const after = Array.from({ length: 20 }, () => `o-${randomUUID()}`);
    await waitFor(async () => (await post(after[0]!)).status === 201, { timeoutMs: 15_000, intervalMs: 200, description: 'the API accepting again' });
    for (const orderId of after.slice(1)) expect((await post(orderId)).status).toBe(201);
    const total = await count('things');
    await waitFor(async () => (await count('effects')) >= total, { timeoutMs: 60_000, intervalMs: 200, description: `${total} effects` });

    const things = new Set((await direct!('things').select('id')).map((r: { id: string }) => r.id));
    for (const id of [...acknowledged, ...burst, ...duringOutage, ...after]) expect(things.has(id)).toBe(true);
    const notOnce = await direct!('things as t')
      .leftJoin('effects as e', 'e.order_id', 't.id')
      .groupBy('t.id')
      .havingRaw('count(e.id) <> 1')
      .select('t.id', direct!.raw('count(e.id) as n'));
    expect(notOnce).toEqual([]);
    expect(await count('effects')).toBe(things.size);
    expect(await direct!('outbox').whereNull('published_at').count<{ n: string }[]>('* as n')).toEqual([{ n: '0' }]);

    // Zero dead letters: the metric, and the dead-letter topic itself is empty.
    expect(await counter(service!, 'events_dead_lettered_total')).toBe(0);
    const admin = service!.ctx.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(dlqTopicName(Streams.orders, env.TOPIC_NAMESPACE));
      expect(offsets.map((o) => o.high)).toEqual(offsets.map(() => '0'));
    } finally {
      await admin.disconnect();
    }
    expect(proxy.accepted).toBeGreaterThan(0);
  }, 150_000);
});
