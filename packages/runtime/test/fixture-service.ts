import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Streams, type OrderEvent } from '@postsale/contracts';
import { AppError, baseConfigSchema, validate, type ServiceDefinition } from '../src';

/**
 * A tiny service built on the runtime, used to prove the shared mechanisms end to end: POST /things writes a row and
 * an OrderCancelled event in one transaction; a consumer of the same stream records one `effects` row per event.
 * A reason of "poison" makes the handler fail permanently; "flaky-N" fails N times with a retriable error.
 */
export const fixtureService: ServiceDefinition<typeof baseConfigSchema> = {
  name: 'fixture',
  configSchema: baseConfigSchema,
  produces: [Streams.orders],
  migrations: [
    {
      name: '0001_fixture',
      async up(db) {
        await db.schema.createTable('things', (t) => {
          t.string('id').primary();
        });
        await db.schema.createTable('effects', (t) => {
          t.increments('id');
          t.string('event_id').notNullable(); // deliberately NOT unique: the inbox alone must prevent duplicates
          t.string('order_id').notNullable();
        });
      },
    },
  ],
  build({ db, outbox }) {
    const flakyFailures = new Map<string, number>();
    return {
      routes(app) {
        app.post('/things', async (req, res) => {
          const body = validate(z.object({ orderId: z.string().min(1), reason: z.string().default('test') }), req.body);
          await db.transaction(async (trx) => {
            await trx('things').insert({ id: body.orderId });
            await outbox.publish(trx, Streams.orders, {
              eventId: randomUUID(), orderId: body.orderId, sellerId: 'seller-1', occurredAt: Date.now(), causationId: null,
              type: 'OrderCancelled',
              payload: { marketplace: 'EBAY', externalOrderId: body.orderId, reason: body.reason, cancelledAt: Date.now() },
            });
          });
          res.status(201).json({ ok: true });
        });
      },
      consumers: [
        {
          group: 'fixture.effects',
          streams: [Streams.orders],
          maxAttempts: 4,
          async handle(event: OrderEvent, { trx }) {
            if (event.type === 'OrderCancelled') {
              const reason = event.payload.reason;
              if (reason === 'poison') throw new AppError('POISON', 'this event can never be processed');
              const flaky = /^flaky-(\d+)$/.exec(reason);
              if (flaky) {
                const failed = flakyFailures.get(event.eventId) ?? 0;
                if (failed < Number(flaky[1])) {
                  flakyFailures.set(event.eventId, failed + 1);
                  throw new AppError('TRANSIENT', 'try again', { retriable: true });
                }
              }
            }
            await trx('effects').insert({ event_id: event.eventId, order_id: event.orderId });
          },
        },
      ],
    };
  },
};
