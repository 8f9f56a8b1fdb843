import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { startPayPalFake, type PayPalFake } from '../../sandbox/src/paypal/paypal-fake';
import { createPayPalWebhookVerifier, PAYPAL_LIVE_CERT_HOSTS } from '../src';

const webhookId = 'WH-HARDENING-0001';
const input = (w: { rawBody: string; headers: Record<string, string> }) => ({ headers: w.headers, rawBody: Buffer.from(w.rawBody), parsedBody: JSON.parse(w.rawBody) });
const certFetches = (fake: PayPalFake) => fake.requests.filter((r) => r.path.startsWith('/v1/notifications/certs/')).length;

describe('PayPal webhook verification, tightened', () => {
  let fake: PayPalFake;
  let other: PayPalFake;
  beforeAll(async () => {
    [fake, other] = await Promise.all([startPayPalFake(), startPayPalFake({ freshWebhookKey: true })]);
    fake.registerWebhook(webhookId);
    other.registerWebhook(webhookId);
  });
  afterAll(() => Promise.all([fake.stop(), other.stop()]));
  const sandbox = (extra: Partial<Parameters<typeof createPayPalWebhookVerifier>[0]> = {}) =>
    createPayPalWebhookVerifier({ mode: 'offline', environment: 'sandbox', webhookId, allowedCertHosts: ['127.0.0.1'], ...extra });
  const event = () => fake.captureCompletedEvent({ amount: '25.00', fee: '1.36' });

  it('when the transmission time is outside the window (a signature from 2001, or from tomorrow), then it does not verify', async () => {
    const verifier = sandbox({ maxTransmissionSkewSeconds: 300 });
    expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId })))).toBe(true);
    expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId, transmissionTime: '2001-09-09T01:46:40Z' })))).toBe(false);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId, transmissionTime: tomorrow })))).toBe(false);
    expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId, transmissionTime: 'not a time' })))).toBe(false);
    const fourMinutesAgo = new Date(Date.now() - 240_000).toISOString().replace(/\.\d+Z$/, 'Z');
    expect(await verifier.verify(input(fake.signedWebhook(event(), { webhookId, transmissionTime: fourMinutesAgo })))).toBe(true);
  });

  it('when the same transmission arrives again inside the window after it was handled, then it is still authentic and flagged as a replay', async () => {
    const verifier = sandbox();
    const signed = fake.signedWebhook(event(), { webhookId });
    const first = await verifier.check(input(signed));
    expect(first).toMatchObject({ authentic: true, replay: false });
    // not handled yet (the caller's work failed half-way): the same transmission is not a replay
    expect(await verifier.check(input(signed))).toMatchObject({ authentic: true, replay: false });
    first.handled();
    expect(await verifier.check(input(signed))).toMatchObject({ authentic: true, replay: true });
    expect(await verifier.check(input(fake.signedWebhook(event(), { webhookId })))).toMatchObject({ authentic: true, replay: false });
    const forged = { ...signed, headers: { ...signed.headers, 'PAYPAL-TRANSMISSION-SIG': 'AAAA' } };
    expect(await verifier.check(input(forged))).toMatchObject({ authentic: false, replay: false });
  });

  it('when PAYPAL-CERT-URL is not a PayPal certificate path, then nothing is fetched and it does not verify', async () => {
    const verifier = sandbox();
    const before = certFetches(fake) + fake.requests.filter((r) => r.path === '/v1/oauth2/token').length;
    const signed = fake.signedWebhook(event(), { webhookId });
    for (const certUrl of [`${fake.url}/v1/oauth2/token`, `${signed.headers['PAYPAL-CERT-URL']}?x=1`, `${fake.url}/v1/notifications/certs/../../v1/oauth2/token`, `${fake.url}/other/certs/CERT-1`]) {
      expect(await verifier.verify(input({ ...signed, headers: { ...signed.headers, 'PAYPAL-CERT-URL': certUrl } }))).toBe(false);
    }
    expect(certFetches(fake) + fake.requests.filter((r) => r.path === '/v1/oauth2/token').length).toBe(before);
  });

  it('when many distinct certificate URLs arrive, then the cache stays bounded and downloads are limited per minute', async () => {
    const bounded = sandbox({ maxCachedCertificates: 1 });
    const a = () => input(fake.signedWebhook(event(), { webhookId }));
    const b = () => input(other.signedWebhook(event(), { webhookId }));
    const [fa, fb] = [certFetches(fake), certFetches(other)];
    for (const next of [a, a, b, a, b]) expect(await bounded.verify(next())).toBe(true);
    // capacity 1: a (fetch), a (cached), b (fetch, evicts a), a (fetch again), b (fetch again)
    expect([certFetches(fake) - fa, certFetches(other) - fb]).toEqual([2, 2]);

    const budget = sandbox({ certificateFetchesPerMinute: 3 });
    const before = certFetches(fake);
    const signed = fake.signedWebhook(event(), { webhookId });
    for (let i = 0; i < 20; i++) {
      const forged = { ...signed, headers: { ...signed.headers, 'PAYPAL-CERT-URL': `${fake.url}/v1/notifications/certs/CERT-${randomUUID()}` } };
      expect(await budget.verify(input(forged))).toBe(false);
    }
    expect(certFetches(fake) - before).toBe(3);
  });

  it('when the verifier is live, then sandbox and loopback certificate hosts are refused and the default is PayPal live only', () => {
    expect(() => createPayPalWebhookVerifier({ mode: 'offline', webhookId, allowedCertHosts: ['api.sandbox.paypal.com'] })).toThrow(/sandbox or loopback/);
    expect(() => createPayPalWebhookVerifier({ mode: 'offline', environment: 'live', webhookId, allowedCertHosts: ['127.0.0.1'] })).toThrow(/sandbox or loopback/);
    expect(() => createPayPalWebhookVerifier({ mode: 'offline', environment: 'live', webhookId, verifyChain: false })).toThrow(/chain/);
    expect(PAYPAL_LIVE_CERT_HOSTS.some((h) => h.includes('sandbox'))).toBe(false);
    expect(() => createPayPalWebhookVerifier({ mode: 'offline', webhookId })).not.toThrow();
  });

  describe('certificate chain', () => {
    let dir: string;
    let server: Server;
    let base: string;
    const served = new Map<string, string>();
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    /** key + certificate; signed by `issuer` (or self-signed), CA or leaf, for `cn` */
    function issue(name: string, cn: string, issuer?: string, ca = false) {
      openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=PayPal, Inc./CN=${cn}`);
      writeFileSync(join(dir, `${name}.ext`), ca ? 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' : 'basicConstraints=CA:FALSE\n');
      const signer = issuer ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial'] : ['-signkey', `${name}.key`];
      openssl('x509', '-req', '-in', `${name}.csr`, '-days', '30', '-sha256', '-extfile', `${name}.ext`, ...signer, '-out', `${name}.pem`);
      return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), pem: readFileSync(join(dir, `${name}.pem`), 'utf8') };
    }
    let root: ReturnType<typeof issue>;
    let otherRoot: ReturnType<typeof issue>;
    let intermediate: ReturnType<typeof issue>;
    let leaf: ReturnType<typeof issue>;
    let selfSigned: ReturnType<typeof issue>;
    let wrongName: ReturnType<typeof issue>;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'paypal-chain-'));
      root = issue('root', 'Test Root CA', undefined, true);
      otherRoot = issue('other', 'Other Root CA', undefined, true);
      intermediate = issue('inter', 'Test Intermediate CA', 'root', true);
      leaf = issue('leaf', 'messageverificationcerts.sandbox.paypal.com', 'inter');
      selfSigned = issue('self', 'messageverificationcerts.sandbox.paypal.com');
      wrongName = issue('wrong', 'evil.example.com', 'inter');
      server = createServer((req, res) => {
        const body = served.get(req.url ?? '');
        res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain' }).end(body ?? 'not found');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    });

    /** a delivery signed with `key`, whose PAYPAL-CERT-URL serves `bundle` */
    function delivery(key: string, bundle: string) {
      const name = `CERT-${randomUUID()}`;
      served.set(`/v1/notifications/certs/${name}`, bundle);
      const rawBody = JSON.stringify(event());
      const transmissionId = randomUUID();
      const transmissionTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const message = `${transmissionId}|${transmissionTime}|${webhookId}|${crc32(Buffer.from(rawBody)) >>> 0}`;
      const sig = sign('sha256', Buffer.from(message), createPrivateKey(key)).toString('base64');
      return input({ rawBody, headers: { 'PAYPAL-TRANSMISSION-ID': transmissionId, 'PAYPAL-TRANSMISSION-TIME': transmissionTime, 'PAYPAL-TRANSMISSION-SIG': sig, 'PAYPAL-CERT-URL': `${base}/v1/notifications/certs/${name}`, 'PAYPAL-AUTH-ALGO': 'SHA256withRSA' } });
    }

    it('when the certificate chains through its intermediate to a trusted root, then it verifies; a self-signed or foreign-rooted one does not', async () => {
      const verifier = sandbox({ verifyChain: true, trustedRoots: [root.pem] });
      expect(await verifier.verify(delivery(leaf.key, leaf.pem + intermediate.pem))).toBe(true);
      expect(await verifier.verify(delivery(leaf.key, leaf.pem))).toBe(false); // intermediate missing
      expect(await verifier.verify(delivery(selfSigned.key, selfSigned.pem))).toBe(false);
      expect(await verifier.verify(delivery(wrongName.key, wrongName.pem + intermediate.pem))).toBe(false); // not PayPal's name
      const foreign = sandbox({ verifyChain: true, trustedRoots: [otherRoot.pem] });
      expect(await foreign.verify(delivery(leaf.key, leaf.pem + intermediate.pem))).toBe(false);
      // without chain verification (a loopback test fake) the self-signed certificate is accepted
      expect(await sandbox().verify(delivery(selfSigned.key, selfSigned.pem))).toBe(true);
    });
  });
});
