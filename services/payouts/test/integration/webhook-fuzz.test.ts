import fc from 'fast-check';
import { type RunningService } from '@postsale/runtime';
import { outboxEventCount, uniqueId } from '@postsale/runtime/testing';
import type { PayPalFake } from '@postsale/sandbox';
import { startPayoutsUnderTest, type PayoutsUnderTest } from '../support/payouts-harness';

/** Runs in `npm test`; FUZZ_RUNS=2000 from outside for the full campaign, FUZZ_SEED to replay a failure. */
const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const params = { numRuns: FUZZ_RUNS, endOnFailure: true, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) };

const nastyString = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom('\u0000', '\ud800')).map(([a, b]) => a + b) },
  fc.constantFrom('', '\u0000', 'a\u0000b', '\ud800', '🙂', "'; drop table payout_items; --", '99999999999999999999999'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.integer({ min: 250, max: 70_000 }).map((n) => 'x'.repeat(n)),
);
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: nastyString },
  fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null),
  fc.constant({}), fc.constant([]), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
);

/** One value of a valid event replaced (by path) or removed; sometimes any JSON. */
function mutated(base: Record<string, unknown>): fc.Arbitrary<unknown> {
  const leaves: string[][] = [];
  const walk = (v: unknown, path: string[]) => {
    leaves.push(path);
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(base, []);
  const edit = (target: Record<string, unknown>, i: number, value: unknown): unknown => {
    const path = leaves[i]!;
    if (path.length === 0) return value;
    const copy = structuredClone(target);
    let parent = copy as Record<string, unknown>;
    for (const step of path.slice(0, -1)) {
      if (!parent[step] || typeof parent[step] !== 'object') return copy; // an earlier edit replaced this branch
      parent = parent[step] as Record<string, unknown>;
    }
    if (value === null) delete parent[path[path.length - 1]!];
    else parent[path[path.length - 1]!] = value;
    return copy;
  };
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(fc.tuple(fc.nat({ max: leaves.length - 1 }), fc.option(nastyValue, { freq: 5 })), { minLength: 1, maxLength: 3 })
      .map((edits) => edits.reduce<unknown>((acc, [i, value]) => (acc && typeof acc === 'object' && !Array.isArray(acc) ? edit(acc as Record<string, unknown>, i, value) : acc), base)) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  );
}

describe(`payouts PayPal webhook under fuzzing (${FUZZ_RUNS} runs)`, () => {
  const webhookId = uniqueId('WH-FUZZ-');
  let under: PayoutsUnderTest;
  let fake: PayPalFake;
  let service: RunningService;
  beforeAll(async () => {
    under = await startPayoutsUnderTest({ prepare: (f) => f.registerWebhook(webhookId), env: { PAYPAL_WEBHOOK_ID: webhookId, PAYPAL_CERT_HOSTS: '127.0.0.1' } });
    ({ fake, service } = under);
  });
  afterAll(() => under?.stop());

  const written = async () => {
    const r = await service.ctx.db.raw(`select (select count(*) from webhook_events) as w, (select count(*) from payout_items) as i`);
    const row = r.rows[0] as { w: string; i: string };
    return `${row.w}/${row.i}/${await outboxEventCount(service)}`; // events: published rows are deleted, so counted
  };

  it('when signed mutated item events, signed raw bytes or forged headers arrive, then no 5xx and refusals write nothing', async () => {
    const resource = {
      payout_item_id: 'JNHK7RXJRL3GC', transaction_id: 'TX123456789', transaction_status: 'SUCCESS', payout_batch_id: 'HGQ9W3JYDVQ8S',
      sender_batch_id: 'postsale-b-1', payout_item: { recipient_type: 'EMAIL', amount: { value: '1.00', currency: 'USD' }, receiver: 'x@y.test', sender_item_id: 'postsale-i-1' },
      errors: { name: 'RECEIVER_UNREGISTERED', message: 'Receiver is unregistered' },
    };
    const base = fake.payoutItemEvent('SUCCEEDED', resource) as unknown as Record<string, unknown>;
    const fiveHundreds: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 5, arbitrary: mutated(base).map((b) => ({ signed: true, raw: JSON.stringify(b) ?? 'null' })) },
          { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((raw) => ({ signed: true, raw })) },
          { weight: 1, arbitrary: mutated(base).map((b) => ({ signed: false, raw: JSON.stringify(b) ?? 'null' })) },
        ),
        async ({ signed, raw }) => {
          const headers = signed ? fake.signedWebhook(null, { webhookId, rawBody: raw }).headers : { 'Content-Type': 'application/json' };
          const before = await written();
          const res = await fetch(`${service.url}/webhooks/paypal`, { method: 'POST', headers, body: Buffer.from(raw, 'utf8') });
          const text = await res.text();
          if (res.status >= 500) fiveHundreds.push(`${res.status} ${text.slice(0, 200)} <- ${raw.slice(0, 300)}`);
          expect(res.status).toBeLessThan(500);
          if (!signed) expect([400, 401, 413]).toContain(res.status);
          if (res.status >= 400) {
            expect((JSON.parse(text) as { error: { code: string } }).error.code).toMatch(/^[A-Z0-9_]+$/);
            expect(await written()).toBe(before);
          }
        },
      ),
      params,
    );
    expect(fiveHundreds).toEqual([]);
  });
});
