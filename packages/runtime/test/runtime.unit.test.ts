import { Writable } from 'node:stream';
import express from 'express';
import { z } from 'zod';
import { baseConfigSchema, ConfigError, createLogger, createSecretBox, loadConfig, REDACTED, requireBearer } from '../src';
import { requireSystemProgram } from '../src/testing';

describe('config', () => {
  const valid = {
    PORT: '3001', DATABASE_URL: 'postgres://x@127.0.0.1/db', DB_SCHEMA: 'ingest', KAFKA_BROKERS: '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081/apis/ccompat/v7', ADMIN_TOKEN: '0123456789abcdef0123',
  };

  it('when a variable is missing, startup fails with a message that names it', () => {
    const { DATABASE_URL: _omit, ...withoutDb } = valid;
    expect(() => loadConfig(baseConfigSchema, withoutDb)).toThrow(ConfigError);
    expect(() => loadConfig(baseConfigSchema, withoutDb)).toThrow(/DATABASE_URL is missing/);
  });

  it('when a variable with a fixed set of values is missing, the message says it is missing', () => {
    const schema = baseConfigSchema.extend({ MODE: z.enum(['sandbox', 'live']) });
    expect(() => loadConfig(schema, valid)).toThrow(/MODE is missing/);
  });

  it('when a variable is malformed, the message names it and says why', () => {
    expect(() => loadConfig(baseConfigSchema, { ...valid, PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig(baseConfigSchema, { ...valid, ADMIN_TOKEN: 'short' })).toThrow(/ADMIN_TOKEN: at least 16/);
  });

  it('parses a valid environment into typed values', () => {
    const config = loadConfig(baseConfigSchema, valid);
    expect(config.PORT).toBe(3001);
    expect(config.KAFKA_BROKERS).toEqual(['127.0.0.1:9092']);
  });
});

describe('logging', () => {
  it('never writes secrets or personal data, at any depth', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const logger = createLogger('test', 'info', sink);
    logger.info({
      orderId: 'o-1',
      authorization: 'Bearer sk_live_abc',
      seller: { accessToken: 'tok-123', payeeEmail: 'seller@example.com' },
      order: { buyer: { name: 'Ana' }, shipTo: { line1: 'Av Siempre Viva 742' }, lines: [{ phone: '+56 9 1234' }] },
      address: { city: 'Santiago' },
    }, 'hello');
    const text = lines.join('');
    for (const secret of ['sk_live_abc', 'tok-123', 'seller@example.com', 'Ana', 'Siempre Viva', '1234', 'Santiago']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('o-1');
    expect(text).toContain(REDACTED);
  });
});

describe('secret box', () => {
  it('round-trips, and a tampered or foreign-key ciphertext does not open', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const box = createSecretBox(key);
    const sealed = box.seal('app-secret');
    expect(sealed).not.toContain('app-secret');
    expect(box.open(sealed)).toBe('app-secret');
    expect(() => createSecretBox(Buffer.alloc(32, 8).toString('base64')).open(sealed)).toThrow();
    const parts = sealed.split(':');
    parts[3] = Buffer.from('tampered').toString('base64');
    expect(() => box.open(parts.join(':'))).toThrow();
  });
});

describe('admin auth', () => {
  it('refuses without the bearer token and admits with it', async () => {
    const app = express();
    app.get('/admin/x', requireBearer('the-right-token-123456'), (_req, res) => { res.json({ ok: true }); });
    app.use((err: { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.status ?? 500).end();
    });
    const server = app.listen(0);
    const port = (server.address() as { port: number }).port;
    try {
      const get = (auth?: string) => fetch(`http://127.0.0.1:${port}/admin/x`, { headers: auth ? { authorization: auth } : {} });
      expect((await get()).status).toBe(401);
      expect((await get('Bearer wrong')).status).toBe(401);
      expect((await get('Bearer the-right-token-123456')).status).toBe(200);
    } finally {
      server.close();
    }
  });
});

describe('real-part tests and the machine', () => {
  it('when a program a test needs is missing, the test fails naming it and the package that installs it', () => {
    expect(() => requireSystemProgram('postsale-no-such-browser', 'chromium')).toThrow(
      /postsale-no-such-browser is not installed: .*apt-get install -y chromium/,
    );
  });

  it('when the program is there, its path is returned', () => {
    expect(requireSystemProgram('sh', 'dash')).toMatch(/\/sh$/);
  });
});
