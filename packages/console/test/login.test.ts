import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import type { Kafka } from 'kafkajs';
import type { EventCodec } from '@postsale/contracts';
import { createLogger } from '@postsale/runtime';
import { AuditLog, createConsoleApp, loadConsoleConfig } from '../src';

/** Sign-in and the cookie's attributes, on the console's express app (no services needed for these routes). */
let server: Server;
let base: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'console-login-'));
  const config = loadConsoleConfig({
    NODE_ENV: 'test', CONSOLE_OPERATOR_TOKEN: 'operator-token-0123456789', CONSOLE_ADMIN_TOKEN: 'admin-token-0123456789abc', CONSOLE_AUDIT_FILE: join(dir, 'audit.jsonl'),
    ADMIN_TOKEN: 'x', INGEST_URL: 'http://127.0.0.1:9', FULFILLMENT_URL: 'http://127.0.0.1:9', SALES_URL: 'http://127.0.0.1:9', PAYOUTS_URL: 'http://127.0.0.1:9',
    KAFKA_BROKERS: '127.0.0.1:9092', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081',
  });
  const app = createConsoleApp({
    config, audit: new AuditLog(config.CONSOLE_AUDIT_FILE), kafka: {} as Kafka, codec: {} as EventCodec,
    logger: createLogger('console-test', 'silent'), sessionSecret: 'a-secret-of-at-least-thirty-two-characters',
  });
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const login = (token: string, host?: string) => axios.post(`${base}/login`, new URLSearchParams({ name: 'ana', token }).toString(), {
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...(host ? { host } : {}) }, maxRedirects: 0, validateStatus: () => true,
});

describe('console sign-in', () => {
  it('when the credential is wrong, then 401 and no cookie', async () => {
    const r = await login('not-a-credential');
    expect(r.status).toBe(401);
    expect(r.headers['set-cookie']).toBeUndefined();
  });

  it('on localhost the session cookie is HttpOnly and SameSite=Strict; anywhere else it is also Secure', async () => {
    const local = (await login('operator-token-0123456789')).headers['set-cookie']![0]!;
    expect(local).toMatch(/HttpOnly/);
    expect(local).toMatch(/SameSite=Strict/);
    expect(local).not.toMatch(/Secure/);
    const remote = (await login('admin-token-0123456789abc', 'console.example.com')).headers['set-cookie']![0]!;
    expect(remote).toMatch(/; Secure/);
    expect(remote).toMatch(/HttpOnly/);
  });

  it('when a form is posted from another site, then it is refused before anything else (sign-in included)', async () => {
    const r = await axios.post(`${base}/login`, new URLSearchParams({ name: 'ana', token: 'admin-token-0123456789abc' }).toString(), {
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, maxRedirects: 0, validateStatus: () => true,
    });
    expect(r.status).toBe(403);
    expect(r.headers['set-cookie']).toBeUndefined();
    const same = await axios.post(`${base}/login`, new URLSearchParams({ name: 'ana', token: 'admin-token-0123456789abc' }).toString(), {
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base }, maxRedirects: 0, validateStatus: () => true,
    });
    expect(same.status).toBe(303);
  });

  it('every page sends a strict Content-Security-Policy (no inline script) and no-store', async () => {
    const r = await axios.get(`${base}/login`);
    expect(r.headers['content-security-policy']).toContain("script-src 'self'");
    expect(r.headers['cache-control']).toBe('no-store');
  });
});
