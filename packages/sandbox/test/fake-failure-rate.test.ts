import { startAliExpressFake, startFakeServer } from '../src';

describe('failure injection at a rate: the provider acts, then a share of the answers is lost', () => {
  it('when drop-after-handling applies to 30% of requests, then every request has its effect and about 30% of the answers are lost', async () => {
    let effects = 0;
    const server = await startFakeServer('rate', (app) => app.post('/act', (_req, res) => {
      effects += 1;
      res.json({ ok: true });
    }));
    try {
      server.fail({ match: /^POST \/act$/, mode: { kind: 'drop-after-handling' }, rate: 0.3 });
      let lost = 0;
      for (let i = 0; i < 200; i++) {
        try {
          const r = await fetch(`${server.url}/act`, { method: 'POST' });
          expect(r.status).toBe(200);
        } catch {
          lost += 1;
        }
      }
      expect(effects).toBe(200);
      // binomial(200, 0.3): mean 60, sd ~6.5; outside 25..100 is practically impossible unless the rate is ignored
      expect(lost).toBeGreaterThan(25);
      expect(lost).toBeLessThan(100);
      expect(() => server.fail({ match: /x/, mode: { kind: 'hang' }, rate: 2 })).toThrow(RangeError);
    } finally {
      await server.stop();
    }
  });

  it('when AliExpress order.create answers are dropped at a rate, then the method rule applies only to that share of calls', async () => {
    const ali = await startAliExpressFake();
    try {
      expect(() => ali.failMethod('aliexpress.ds.order.create', { kind: 'drop-after-handling' }, Infinity, -0.5)).toThrow(RangeError);
      const never = ali.failMethod('aliexpress.ds.order.create', { kind: 'business-error', errorCode: 'NEVER' }, Infinity, 0);
      never();
    } finally {
      await ali.stop();
    }
  });

  it('when an answer is held, then the provider has acted before the client hears anything, and the answer comes after the hold', async () => {
    let effects = 0;
    const server = await startFakeServer('hold', (app) => app.post('/act', (_req, res) => {
      effects += 1;
      res.json({ ok: true });
    }));
    try {
      server.fail({ match: /^POST \/act$/, mode: { kind: 'hold-answer', ms: 400 }, times: 1 });
      const started = Date.now();
      const answer = fetch(`${server.url}/act`, { method: 'POST' });
      await new Promise((r) => setTimeout(r, 150));
      expect(effects).toBe(1);
      const r = await answer;
      expect(await r.json()).toEqual({ ok: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    } finally {
      await server.stop();
    }
  });
});
