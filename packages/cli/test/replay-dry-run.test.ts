import { randomUUID } from 'node:crypto';
import { Streams, type OrderEvent } from '@postsale/contracts';
import { AppError, baseConfigSchema, producerConfig, startService, type RunningService, type ServiceDefinition } from '@postsale/runtime';
import { dropSchema, testEnv, waitFor } from '@postsale/runtime/testing';
import { describeInbox, redriveDryRun, replayDryRun, serviceInboxProbe } from '../src/commands/replay-dry-run';
import { loadOperatorConfig } from '../src/operator-config';

/** A consumer named like one of sales' groups, so the dry run asks "sales" (this process) about its inbox. */
const applied: string[] = [];
const service: ServiceDefinition<typeof baseConfigSchema> = {
  name: 'dry-run-fixture',
  configSchema: baseConfigSchema,
  produces: [Streams.orders],
  migrations: [],
  build() {
    return {
      consumers: [{
        group: 'sales.dry-run-probe',
        streams: [Streams.orders],
        async handle(event: OrderEvent) {
          if (event.sellerId === 'poisoned') throw new AppError('POISON', 'never applies');
          applied.push(event.eventId);
        },
      }],
    };
  },
};

describe('replay and redrive dry runs ask each consumer\'s inbox what it already applied (real Kafka, registry, Postgres)', () => {
  let env: Record<string, string>;
  let running: RunningService;
  beforeAll(async () => {
    env = testEnv('cli');
    running = await startService(service, env);
  });
  afterAll(async () => {
    await running?.stop();
    if (env) await dropSchema(env.DB_SCHEMA!);
  });

  it('when one applied event is no longer in the inbox (purged), then the dry run reports what the inbox holds, not what the offsets imply', async () => {
    const { kafka, codec, db } = running.ctx;
    const topic = codec.topic(Streams.orders);
    const group = `${env.TOPIC_NAMESPACE}.sales.dry-run-probe`;
    const events: OrderEvent[] = Array.from({ length: 3 }, () => ({
      eventId: randomUUID(), orderId: `o-${randomUUID()}`, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
      type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: 'x', reason: 'test', cancelledAt: Date.now() },
    }));
    const producer = kafka.producer(producerConfig());
    await producer.connect();
    try {
      const messages = [];
      for (const e of events) messages.push({ key: e.orderId, value: await codec.encode(Streams.orders, e) });
      // and a message that is no event at all (dead-lettered by the consumer)
      messages.push({ key: 'o-poison', value: Buffer.from('not avro') });
      await producer.send({ topic, acks: -1, messages });
    } finally {
      await producer.disconnect();
    }
    await waitFor(async () => {
      const admin = kafka.admin();
      await admin.connect();
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] }).finally(() => admin.disconnect());
      return offsets!.partitions.reduce((n, p) => n + (p.offset === '-1' ? 0 : Number(p.offset)), 0) === 4;
    }, { description: 'the group committed past all four messages' });
    expect(events.every((e) => applied.includes(e.eventId))).toBe(true);
    // retention (or an operator) removed one id from the inbox: a replay WOULD apply that event again
    const purged = events[0]!;
    expect(await db('inbox').where({ consumer_group: group, event_id: purged.eventId }).delete()).toBe(1);

    const config = loadOperatorConfig({ ...env, TOPIC_NAMESPACE: env.TOPIC_NAMESPACE, SALES_URL: running.url, POSTSALE_ADMIN_TOKEN: env.ADMIN_TOKEN, INGEST_URL: 'http://127.0.0.1:9' });
    const probe = serviceInboxProbe(config, codec);
    const plan = await replayDryRun(kafka, { topic, from: '0', group }, probe);
    const g = plan.groups.find((x) => x.group === group)!;
    expect(g.redeliver).toBe('4');
    expect(g.inbox).toEqual({ service: 'sales', asked: 3, held: 2, undecodable: 1 });
    expect(describeInbox(g.inbox)).toBe('sales inbox holds 2 of 3 event(s): skipped as already applied; 1 applied anew; 1 undecodable (dead-lettered again)');
    // without a probe nothing is claimed about the inbox
    expect((await replayDryRun(kafka, { topic, from: '0', group })).groups[0]!.inbox).toBeUndefined();

    // a redrive of each event: the inbox says which one the group would skip and which it would apply
    const messages = await Promise.all(events.map(async (e) => ({ value: await codec.encode(Streams.orders, e) })));
    const letter = (i: number) => ({ id: `l${i}`, originalTopic: topic, originalPartition: '0', originalOffset: '0', group, message: messages[i]! });
    expect((await redriveDryRun(kafka, letter(0), probe)).groups.find((x) => x.group === group)).toMatchObject({ outcome: 'tries again', inbox: 'does not hold it' });
    expect((await redriveDryRun(kafka, letter(1), probe)).groups.find((x) => x.group === group)).toMatchObject({ outcome: 'skips (already applied)', inbox: 'holds it' });

    // a service that does not answer: said so, nothing invented
    const unknown = await serviceInboxProbe({ ...config, SALES_URL: 'http://127.0.0.1:9' }, codec).held(group, [purged.eventId]);
    expect(unknown).toEqual({ error: expect.stringContaining('sales answered') });
  });
});
