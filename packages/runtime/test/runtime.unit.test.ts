import { Writable } from 'node:stream';
import express from 'express';
import { z } from 'zod';
import { baseConfigSchema, ConfigError, createHttpApp, createLogger, Metrics, createSecretBox, kafkaClientSecurity, loadConfig, REDACTED, requireBearer, sealLegacyV1, statementShape } from '../src';
import { requireSystemProgram } from '../src/testing';

describe('config', () => {
  const valid = {
    NODE_ENV: 'test', PORT: '3001', DATABASE_URL: 'postgres://x@127.0.0.1/db', DB_SCHEMA: 'ingest', KAFKA_BROKERS: '127.0.0.1:9092',
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

  it('TRUST_PROXY names proxies or a hop count, never "trust everything", and decides whose X-Forwarded-For gives req.ip', async () => {
    expect(loadConfig(baseConfigSchema, valid).TRUST_PROXY).toEqual(['loopback']);
    expect(loadConfig(baseConfigSchema, { ...valid, TRUST_PROXY: 'loopback, 10.0.0.0/8' }).TRUST_PROXY).toEqual(['loopback', '10.0.0.0/8']);
    expect(loadConfig(baseConfigSchema, { ...valid, TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2);
    for (const bad of ['true', 'TRUE', 'loopback;rm', '*']) expect(() => loadConfig(baseConfigSchema, { ...valid, TRUST_PROXY: bad })).toThrow(/TRUST_PROXY/);

    // this test's requests come from loopback: believed when loopback is trusted, not when only the ingress's range is
    const seenAddress = async (trustProxy: number | string[]) => {
      const app = createHttpApp({ logger: createLogger('t', 'silent'), metrics: new Metrics('t', { defaultMetrics: false }), bodyLimitBytes: 1024, readiness: {}, trustProxy,
        routes: (a) => a.get('/ip', (req, res) => { res.json({ ip: req.ip }); }) });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      try {
        const res = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/ip`, { headers: { 'X-Forwarded-For': '203.0.113.9' } });
        return ((await res.json()) as { ip: string }).ip;
      } finally {
        server.close();
      }
    };
    expect(await seenAddress(['loopback'])).toBe('203.0.113.9');
    expect(await seenAddress(['10.0.0.0/8'])).toMatch(/127\.0\.0\.1$/);
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
  const key = Buffer.alloc(32, 7).toString('base64');
  const other = Buffer.alloc(32, 8).toString('base64');
  const at = { owner: 'seller-a', field: 'supplier_credentials.app_secret_sealed' };

  it('round-trips, and a tampered or foreign-key ciphertext does not open', () => {
    const box = createSecretBox(key);
    const sealed = box.seal('app-secret', at);
    expect(sealed).not.toContain('app-secret');
    expect(box.open(sealed, at)).toBe('app-secret');
    expect(() => createSecretBox({ key: other, keyId: box.keyId }).open(sealed, at)).toThrow();
    const parts = sealed.split(':');
    parts[4] = Buffer.from('tampered').toString('base64');
    expect(() => box.open(parts.join(':'), at)).toThrow();
  });

  it('binds each value to its owner and field: moved to another seller or column, it does not open', () => {
    const box = createSecretBox(key);
    const sealed = box.seal('app-secret', at);
    expect(() => box.open(sealed, { ...at, owner: 'seller-b' })).toThrow();
    expect(() => box.open(sealed, { ...at, field: 'supplier_credentials.web_password_sealed' })).toThrow();
    expect(() => box.seal('x', { owner: '', field: 'f' })).toThrow(/owner and field/);
  });

  it('refuses a truncated authentication tag (exactly 16 bytes)', () => {
    const box = createSecretBox(key);
    const parts = box.seal('app-secret', at).split(':');
    parts[3] = Buffer.from(parts[3]!, 'base64').subarray(0, 12).toString('base64');
    expect(() => box.open(parts.join(':'), at)).toThrow(/16 bytes/);
    const legacy = sealLegacyV1(key, 'old').split(':');
    legacy[2] = Buffer.from(legacy[2]!, 'base64').subarray(0, 8).toString('base64');
    expect(() => box.open(legacy.join(':'), at)).toThrow();
  });

  it('carries a key id; previous keys still open, the current key seals; v1 values still open', () => {
    const old = createSecretBox({ key, keyId: 'k2025' });
    const sealedOld = old.seal('token', at);
    expect(sealedOld.startsWith('v2:k2025:')).toBe(true);
    const rotated = createSecretBox({ key: other, keyId: 'k2026', previousKeys: `k2025:${key}` });
    expect(rotated.open(sealedOld, at)).toBe('token');
    expect(rotated.isCurrent(sealedOld)).toBe(false);
    const resealed = rotated.seal(rotated.open(sealedOld, at), at);
    expect(rotated.isCurrent(resealed)).toBe(true);
    expect(createSecretBox({ key: other, keyId: 'k2026' }).open(resealed, at)).toBe('token');
    expect(() => createSecretBox({ key: other, keyId: 'k2026' }).open(sealedOld, at)).toThrow(/k2025 is not configured/);
    // sealed the old way (v1, no key id, no binding): opens with the key that sealed it, current or previous
    const legacy = sealLegacyV1(key, 'legacy-token');
    expect(rotated.open(legacy, at)).toBe('legacy-token');
    expect(rotated.isCurrent(legacy)).toBe(false);
    expect(() => createSecretBox(other).open(legacy, at)).toThrow(/any configured key/);
    // bare previous keys get their fingerprint as id
    const fingerprinted = createSecretBox(key);
    expect(createSecretBox({ key: other, previousKeys: key }).open(fingerprinted.seal('t', at), at)).toBe('t');
  });
});

describe('Kafka authentication settings', () => {
  const base = {
    PORT: '3001', DATABASE_URL: 'postgres://x@127.0.0.1/db', DB_SCHEMA: 'ingest', KAFKA_BROKERS: 'kafka:9092',
    SCHEMA_REGISTRY_URL: 'http://registry:8080/apis/ccompat/v7', ADMIN_TOKEN: '0123456789abcdef0123',
  };
  const sasl = { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'ingest', KAFKA_SASL_PASSWORD: 'kafka-password-123' };

  it('NODE_ENV has no default: a process without it does not start (never assumed development)', () => {
    expect(() => loadConfig(baseConfigSchema, base)).toThrow(/NODE_ENV is missing/);
  });

  it('production refuses to start without Kafka authentication', () => {
    expect(() => loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'production' })).toThrow(/KAFKA_SASL_MECHANISM: required in production/);
    expect(() => loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'production', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toThrow(/KAFKA_SSL/);
    const config = loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'production', ...sasl });
    expect(config.KAFKA_SASL_MECHANISM).toBe('scram-sha-512');
    expect(config.KAFKA_SSL).toBe(false);
    expect(loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'development' }).KAFKA_SASL_MECHANISM).toBeUndefined();
  });

  it('half-configured SASL or a CA without TLS is refused, naming the variable and never the password', () => {
    const attempt = () => loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'test', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u' });
    expect(attempt).toThrow(/KAFKA_SASL_PASSWORD: required/);
    expect(() => loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'test', KAFKA_SASL_PASSWORD: 'kafka-password-123' })).toThrow(/KAFKA_SASL_MECHANISM/);
    try {
      loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'test', KAFKA_SASL_PASSWORD: 'kafka-password-123' });
    } catch (error) {
      expect((error as Error).message).not.toContain('kafka-password-123');
    }
    expect(() => loadConfig(baseConfigSchema, { ...base, NODE_ENV: 'test', KAFKA_SSL_CA_FILE: '/etc/ca.pem' })).toThrow(/KAFKA_SSL_CA_FILE/);
  });

  it('the client options come from the config: SCRAM credentials, TLS with verification', () => {
    expect(kafkaClientSecurity({})).toEqual({});
    expect(kafkaClientSecurity({ ...sasl, KAFKA_SSL: 'true' })).toEqual({
      sasl: { mechanism: 'scram-sha-512', username: 'ingest', password: 'kafka-password-123' },
      ssl: { rejectUnauthorized: true },
    });
    expect(() => kafkaClientSecurity({ KAFKA_SASL_MECHANISM: 'scram-sha-512' })).toThrow(/KAFKA_SASL_USERNAME/);
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

describe('statement profile', () => {
  it('when inserts differ only in how many rows they carry, then they count as one statement', () => {
    const one = statementShape('insert into "outbox" ("a", "b") values ($1, $2)');
    const three = statementShape('insert into "outbox" ("a", "b") values ($1, $2), ($3, $4),\n ($5, $6)');
    expect(one).toBe('insert into "outbox" ("a", "b") values (?…)');
    expect(three).toBe('insert into "outbox" ("a", "b") values (?…),…');
    expect(statementShape('select * from t where id in ($1, $2, $3) and x = $4')).toBe('select * from t where id in (?…) and x = ?');
  });
});
