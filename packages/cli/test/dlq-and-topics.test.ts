import { randomUUID } from 'node:crypto';
import { Streams, type OrderEvent } from '@postsale/contracts';
import { AppError, baseConfigSchema, startService, type RunningService, type ServiceDefinition } from '@postsale/runtime';
import { dropSchema, testEnv, waitFor } from '@postsale/runtime/testing';
import { describeDeadLetter, listDeadLetters, redrive } from '../src/commands/dlq';
import { describeTopics } from '../src/commands/topics';

/** A consumer that cannot process orders of a "blocked" seller until an operator fixes the cause. */
const blockedSellers = new Set<string>();
const effects: string[] = [];
const service: ServiceDefinition<typeof baseConfigSchema> = {
  name: 'dlq-fixture',
  configSchema: baseConfigSchema,
  produces: [Streams.orders],
  migrations: [],
  build() {
    return {
      consumers: [{
        group: 'fixture.dlq',
        streams: [Streams.orders],
        async handle(event: OrderEvent) {
          if (blockedSellers.has(event.sellerId)) throw new AppError('SELLER_BLOCKED', `seller ${event.sellerId} is blocked`);
          effects.push(event.eventId);
        },
      }],
    };
  },
};

describe('postsale dlq and topics, on real Kafka and registry', () => {
  let env: Record<string, string>;
  let running: RunningService;
  beforeAll(async () => {
    env = testEnv('cli');
    running = await startService(service, env);
  });
  afterAll(async () => {
    await running.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  const publish = async (sellerId: string) => {
    const event: OrderEvent = {
      eventId: randomUUID(), orderId: `o-${randomUUID()}`, sellerId, occurredAt: Date.now(), causationId: null,
      type: 'OrderCancelled', payload: { marketplace: 'EBAY', externalOrderId: 'x', reason: 'test', cancelledAt: Date.now() },
    };
    await running.ctx.db.transaction((trx) => running.ctx.outbox.publish(trx, Streams.orders, event));
    return event;
  };

  it('lists a dead letter with its reason, shows the event, and after the fix a redrive applies it exactly once', async () => {
    const { kafka, codec } = running.ctx;
    blockedSellers.add('seller-blocked');
    const failing = await publish('seller-blocked');
    const letters = await waitFor(async () => {
      const l = await listDeadLetters(kafka, env.TOPIC_NAMESPACE);
      return l.length === 1 ? l : undefined;
    }, { description: 'one dead letter' });
    const letter = letters[0]!;
    expect(letter).toMatchObject({ code: 'SELLER_BLOCKED', reason: 'seller seller-blocked is blocked', originalTopic: codec.topic(Streams.orders), redriven: false });
    expect(letter.group).toBe(`${env.TOPIC_NAMESPACE}.fixture.dlq`);
    expect(await describeDeadLetter(letter, codec)).toMatchObject({ eventId: failing.eventId, type: 'OrderCancelled' });
    expect(effects).not.toContain(failing.eventId);

    // The operator fixes the cause and redrives; the event is applied once, and the letter is marked redriven.
    blockedSellers.delete('seller-blocked');
    expect(await redrive(kafka, letters)).toBe(1);
    await waitFor(() => effects.includes(failing.eventId), { description: 'the redriven event applied' });
    const after = await listDeadLetters(kafka, env.TOPIC_NAMESPACE);
    expect(after).toHaveLength(1);
    expect(after[0]!.redriven).toBe(true);
    // A second redrive of the same letter does nothing.
    expect(await redrive(kafka, after)).toBe(0);
    expect(effects.filter((id) => id === failing.eventId)).toHaveLength(1);
  });

  it('topics shows every stream with its DLQ, message counts and the consumer group caught up', async () => {
    await publish('seller-ok');
    const ordersTopic = running.ctx.codec.topic(Streams.orders);
    const summary = await waitFor(async () => {
      const topics = await describeTopics(running.ctx.kafka, env.TOPIC_NAMESPACE);
      const orders = topics.find((t) => t.topic === ordersTopic);
      return orders && orders.groups.some((g) => g.lag === 0n) ? topics : undefined;
    }, { description: 'the group caught up on the orders topic' });
    expect(summary.map((t) => t.topic)).toEqual(expect.arrayContaining([ordersTopic, `${ordersTopic}.dlq`]));
    const orders = summary.find((t) => t.topic === ordersTopic)!;
    expect(orders.partitions).toBe(Streams.orders.partitions);
    expect(orders.messages).toBeGreaterThanOrEqual(2n);
    expect(orders.groups.map((g) => g.group)).toContain(`${env.TOPIC_NAMESPACE}.fixture.dlq`);
  });
});
