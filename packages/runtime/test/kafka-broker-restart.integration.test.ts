import { randomUUID } from 'node:crypto';
import { dlqTopicName, Streams } from '@postsale/contracts';
import { startService, type RunningService } from '../src';
import { dropSchema, testEnv, waitFor } from '../src/testing';
import { fixtureService } from './fixture-service';
import { startPrivateBroker, type PrivateBroker } from '../src/private-broker';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };

async function counter(service: RunningService, name: string): Promise<number> {
  const text = await service.ctx.metrics.registry.getSingleMetricAsString(name);
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/**
 * The broker is kill -9ed mid-flow and started again. A private broker (own ports and data directory) stands in for the
 * shared one on 9092, which other test runs use.
 */
describe('a Kafka broker restart while events flow', () => {
  let broker: PrivateBroker | undefined;
  let env: Record<string, string> | undefined;
  let service: RunningService | undefined;

  afterAll(async () => {
    await service?.stop().catch(() => undefined);
    await broker?.stop();
    if (env) await dropSchema(env.DB_SCHEMA!);
  });

  it('kill -9 and restart: producers and consumers recover without an operator, every event applied exactly once, 0 dead letters', async () => {
    const startedAt = Date.now();
    broker = await startPrivateBroker();
    env = testEnv('kafkart', broker.env); // KAFKA_BROKERS and its SASL user
    service = await startService(fixtureService, env);
    const { db } = service.ctx;
    const s = service;

    // Orders keep arriving through the API the whole time: it needs only Postgres (the outbox), never the broker.
    const acknowledged: string[] = [];
    const refused: number[] = [];
    let posting = true;
    const poster = (async () => {
      while (posting) {
        const orderId = `o-${randomUUID()}`;
        const response = await fetch(`${s.url}/things`, {
          method: 'POST', headers: { 'content-type': 'application/json', ...ADMIN }, body: JSON.stringify({ orderId }),
        });
        if (response.status === 201) acknowledged.push(orderId);
        else refused.push(response.status);
        await new Promise((r) => setTimeout(r, 20)); // pacing (~50 orders/s), so the backlog stays small on two cores
      }
    })();
    const effects = async () => Number((await db('effects').count<{ n: string }[]>('* as n'))[0]!.n);
    const unpublished = async () => Number((await db('outbox').whereNull('published_at').count<{ n: string }[]>('* as n'))[0]!.n);

    try {
      await waitFor(async () => (await effects()) >= 30, { timeoutMs: 20_000, description: 'events flowing end to end' });
      await broker.kill9();
      const effectsAtKill = await effects();
      // The outage bites: accepted events pile up in the outbox while nothing can be published.
      await waitFor(async () => (await unpublished()) >= 30, { timeoutMs: 15_000, description: 'events waiting in the outbox' });
      await broker.restart();
      const restartedAt = Date.now();
      await waitFor(async () => (await effects()) >= effectsAtKill + 30, { timeoutMs: 45_000, intervalMs: 200, description: 'events applied again after the restart' });
      posting = false;
      await poster;
      const total = acknowledged.length;
      await waitFor(async () => (await effects()) >= total && (await unpublished()) === 0, { timeoutMs: 30_000, intervalMs: 200, description: `${total} effects` });
      console.info(`kafka restart: ${total} events, recovered ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart, whole test ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    } finally {
      posting = false;
      await poster.catch(() => undefined);
    }

    expect(refused).toEqual([]);
    const notOnce = await db('things as t')
      .leftJoin('effects as e', 'e.order_id', 't.id')
      .groupBy('t.id')
      .havingRaw('count(e.id) <> 1')
      .select('t.id', db.raw('count(e.id) as n'));
    expect(notOnce).toEqual([]);
    expect(Number((await db('effects').count<{ n: string }[]>('* as n'))[0]!.n)).toBe(acknowledged.length);
    expect(Number((await db('things').count<{ n: string }[]>('* as n'))[0]!.n)).toBe(acknowledged.length);

    expect(await counter(s, 'events_dead_lettered_total')).toBe(0);
    const admin = s.ctx.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(dlqTopicName(Streams.orders, env.TOPIC_NAMESPACE));
      expect(offsets.map((o) => o.high)).toEqual(offsets.map(() => '0'));
    } finally {
      await admin.disconnect();
    }
  }, 90_000);
});
