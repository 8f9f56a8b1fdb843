import { randomUUID } from 'node:crypto';
import { startService, type RunningService } from '../src';
import { dropSchema, testEnv, waitFor } from '../src/testing';
import { fixtureService } from './fixture-service';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };
const OPERATOR_TOKEN = 'test-operator-token-0123456789';

describe('every service answers how many of a set of events its inbox already holds', () => {
  let env: Record<string, string>;
  let service: RunningService;
  beforeAll(async () => {
    env = testEnv('runtime', { OPERATOR_TOKEN });
    service = await startService(fixtureService, env);
  });
  afterAll(async () => {
    await service?.stop();
    if (env) await dropSchema(env.DB_SCHEMA!);
  });
  const held = (query: string, headers: Record<string, string> = ADMIN) => fetch(`${service.url}/admin/inbox/held?${query}`, { headers });

  it('when two events were applied, then their ids count as held for that group only, unknown ids do not, and bad queries are 4xx', async () => {
    const orders = [`o-${randomUUID()}`, `o-${randomUUID()}`];
    for (const orderId of orders) {
      const r = await fetch(`${service.url}/things`, { method: 'POST', headers: { 'content-type': 'application/json', ...ADMIN }, body: JSON.stringify({ orderId }) });
      expect(r.status).toBe(201);
    }
    const rows = await waitFor(async () => {
      const r = await service.ctx.db('inbox').whereIn('event_id', service.ctx.db('effects').whereIn('order_id', orders).select('event_id'));
      return r.length === 2 ? r : undefined;
    }, { description: 'both events applied' });
    const group = String(rows[0]!.consumer_group);
    const ids = rows.map((r) => String(r.event_id));

    const answer = await held(`group=${group}&eventIds=${[...ids, randomUUID(), ids[0]].join(',')}`);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ group, asked: 3, held: 2 });
    // another group's inbox holds none of them
    expect(await (await held(`group=${group}-other&eventIds=${ids.join(',')}`)).json()).toEqual({ group: `${group}-other`, asked: 2, held: 0 });
    // a read: the operator credential may ask; no credential may not
    expect((await held(`group=${group}&eventIds=${ids[0]}`, { authorization: `Bearer ${OPERATOR_TOKEN}` })).status).toBe(200);
    expect((await held(`group=${group}&eventIds=${ids[0]}`, {})).status).toBe(401);
    for (const bad of [`group=${group}`, `eventIds=${ids[0]}`, `group=${group}&eventIds=a%00b`, `group=bad%20group&eventIds=${ids[0]}`,
      `group=${group}&eventIds=${Array.from({ length: 101 }, () => randomUUID()).join(',')}`, `group=${group}&eventIds=${ids[0]}&extra=1`]) {
      const r = await held(bad);
      expect({ bad, status: r.status, code: ((await r.json()) as { error?: { code?: string } }).error?.code }).toEqual({ bad, status: 400, code: 'INVALID_QUERY' });
    }
  });
});
