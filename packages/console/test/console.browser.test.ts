import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';
import { orderIdFor } from '@postsale/contracts';
import { listDeadLetters, REPO_ROOT, sendDemoOrder } from '@postsale/cli';
import { startE2E, type E2E } from '@postsale/e2e';
import { localInfraEnv, producerConfig } from '@postsale/runtime';
import { requireSystemProgram, uniqueId, waitFor } from '@postsale/runtime/testing';
import { DEMO } from '@postsale/sandbox';
import { loadConsoleConfig, startConsole, type RunningConsole } from '../src';

/**
 * The console in a real Chromium against the real stack (the four services as processes, Kafka, the registry,
 * Postgres, the sandbox fakes): what an operator does with it, page by page. Screenshots of every page go to a
 * temporary folder, or to docs/console/ (linked from the package README) with CONSOLE_SCREENSHOTS=docs: a test run
 * leaves the checkout as it found it.
 */
const SHOTS_TO_DOCS = process.env.CONSOLE_SCREENSHOTS === 'docs';
const SHOTS = SHOTS_TO_DOCS ? join(REPO_ROOT, 'docs', 'console') : mkdtempSync(join(tmpdir(), 'console-shots-'));
const ADMIN_TOKEN = `console-admin-${uniqueId('')}`;
const OPERATOR_TOKEN = `console-operator-${uniqueId('')}`;

let e2e: E2E;
let consoleServer: RunningConsole;
let browser: Browser;
let profile: string;
let auditDir: string;
const consoleErrors: string[] = [];

async function watch(page: Page): Promise<Page> {
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${(e as Error).message}`));
  return page;
}

async function signIn(context: BrowserContext, name: string, token: string): Promise<Page> {
  const page = await watch(await context.newPage());
  await page.setViewport({ width: 1366, height: 900 });
  await page.goto(`${consoleServer.url}/login`);
  await page.type('#name', name);
  await page.type('#token', token);
  // Keyboard only: Enter submits the form.
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  return page;
}

const text = (page: Page) => page.$eval('main', (m) => (m as HTMLElement).innerText);
const header = (page: Page) => page.$eval('header', (m) => (m as HTMLElement).innerText);
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

/** Every visible form control on the page has a label (accessibility basics). */
async function unlabelled(page: Page): Promise<string[]> {
  return page.$$eval('input:not([type=hidden]), select, textarea', (els) =>
    els.filter((e) => ((e as HTMLInputElement).labels?.length ?? 0) === 0).map((e) => (e as HTMLElement).outerHTML));
}

beforeAll(async () => {
  const chromium = requireSystemProgram('chromium', 'chromium');
  mkdirSync(SHOTS, { recursive: true });
  e2e = await startE2E();
  auditDir = mkdtempSync(join(tmpdir(), 'console-audit-'));
  consoleServer = await startConsole(loadConsoleConfig({
    NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1',
    CONSOLE_OPERATOR_TOKEN: OPERATOR_TOKEN, CONSOLE_ADMIN_TOKEN: ADMIN_TOKEN, CONSOLE_AUDIT_FILE: join(auditDir, 'audit.jsonl'),
    ADMIN_TOKEN: e2e.operator.POSTSALE_ADMIN_TOKEN, INGEST_URL: e2e.pipeline.urls.ingest, FULFILLMENT_URL: e2e.pipeline.urls.fulfillment,
    SALES_URL: e2e.pipeline.urls.sales, PAYOUTS_URL: e2e.pipeline.urls.payouts, KAFKA_BROKERS: e2e.operator.KAFKA_BROKERS.join(','),
    SCHEMA_REGISTRY_URL: e2e.operator.SCHEMA_REGISTRY_URL, TOPIC_NAMESPACE: e2e.namespace, LOG_LEVEL: 'warn',
    // the local broker's login (SASL/SCRAM), as every local client gets it
    ...Object.fromEntries(Object.entries(localInfraEnv()).filter(([name]) => name.startsWith('KAFKA_SASL_') || name.startsWith('KAFKA_SSL'))),
  }));
  profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`],
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await consoleServer?.stop();
  await e2e?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (auditDir) rmSync(auditDir, { recursive: true, force: true });
  if (!SHOTS_TO_DOCS) rmSync(SHOTS, { recursive: true, force: true });
}, 120_000);

describe('operator console in Chromium, on the real stack', () => {
  let admin: Page;
  let mlExternalId: string;
  let mlOrderId: string;
  let reviewOrderId: string;

  it('signs in with the admin credential, keyboard only, and shows the home figures', async () => {
    const sent = await sendDemoOrder(e2e.pipeline.world, e2e.pipeline.urls.ingest, 'mercadolibre');
    expect(sent.statuses).toEqual([200]);
    mlExternalId = sent.externalOrderId;
    mlOrderId = orderIdFor('MERCADOLIBRE', mlExternalId);
    await waitFor(async () => {
      const r = await e2e.admin.payouts.get(`/admin/orders/${mlOrderId}`);
      return r.status === 200 && r.data.state === 'SETTLED';
    }, { timeoutMs: 120_000, intervalMs: 500, description: 'the MercadoLibre demo order paid out' });

    const context = await browser.createBrowserContext();
    const login = await watch(await context.newPage());
    await login.setViewport({ width: 1366, height: 900 });
    await login.goto(`${consoleServer.url}/login`);
    expect(await unlabelled(login)).toEqual([]);
    await shot(login, '01-sign-in');
    await login.close();

    admin = await signIn(context, 'e2e-admin', ADMIN_TOKEN);
    expect(new URL(admin.url()).pathname).toBe('/');
    const home = await text(admin);
    expect(home).toContain('Orders in flight, per stage');
    expect(await header(admin)).toContain('e2e-admin · admin (write)');
    // Keyboard: the first Tab lands on the skip link, the next ones walk the navigation.
    await admin.keyboard.press('Tab');
    expect(await admin.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await admin.keyboard.press('Tab');
    expect(await admin.evaluate(() => document.activeElement?.getAttribute('href'))).toBe('/');
    await admin.keyboard.press('Tab');
    expect(await admin.evaluate(() => document.activeElement?.getAttribute('href'))).toBe('/orders');
    await shot(admin, '02-home');

    // The cookie: HttpOnly, SameSite=Strict (Secure is set outside localhost).
    const cookie = (await admin.cookies()).find((c) => c.name === 'postsale_console');
    expect(cookie).toEqual(expect.objectContaining({ httpOnly: true, sameSite: 'Strict' }));
  }, 180_000);

  it('finds the demo order by its MercadoLibre id and reads its timeline to PayoutSent, personal data masked', async () => {
    await admin.goto(`${consoleServer.url}/orders`);
    await admin.type('#q', mlExternalId);
    await Promise.all([admin.waitForNavigation(), admin.keyboard.press('Enter')]);
    expect(new URL(admin.url()).pathname).toBe(`/orders/${mlOrderId}`);
    // Payouts settles before sales has applied PayoutSent: wait for the whole story, reloading like an operator.
    await waitFor(async () => {
      await admin.reload();
      return (await text(admin)).includes('PayoutSent');
    }, { timeoutMs: 30_000, intervalMs: 500, description: 'PayoutSent in the timeline' });
    const events = await admin.$$eval('table.timeline tbody tr td.event', (tds) => tds.map((t) => t.textContent ?? ''));
    const order = ['WebhookReceived', 'OrderReceived', 'RECEIVED → PURCHASING', 'AWAITING_PAYMENT → PURCHASED', 'SaleRecorded', 'PayoutSent'];
    const positions = order.map((e) => events.findIndex((x) => x.startsWith(e)));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    const page = await text(admin);
    expect(page).toMatch(/sale 19990 CLP = marketplace fee 2599 CLP/);
    expect(page).toContain('out_order_id');
    expect(page).toContain('sender_batch_id');

    // Masked by default; an admin reveals with a reason, and the reveal is audited.
    const shipTo = (await e2e.admin.fulfillment.get(`/admin/orders/${mlOrderId}`)).data.shipTo as { fullName: string; line1: string };
    expect(page).not.toContain(shipTo.fullName);
    expect(page).not.toContain(shipTo.line1);
    await shot(admin, '03-order-journey');
    await admin.type('#reveal-reason', 'buyer called about the delivery address');
    await Promise.all([admin.waitForNavigation(), admin.click('form[action$="/reveal"] button')]);
    expect(await text(admin)).toContain(shipTo.fullName);

    // With the Kafka records: topic, partition and offset of each of the order's events.
    await admin.goto(`${consoleServer.url}/orders/${mlOrderId}?kafka=1`);
    expect(await text(admin)).toMatch(new RegExp(`${e2e.namespace}\\.postsale\\.orders\\.v1 p\\d+@\\d+`));
  }, 90_000);

  it('approves an order from the review queue with a reason, and the action appears in its timeline', async () => {
    // A price-guard violation: the demo seller's policy allows at most 1.00 USD of supplier cost.
    const policy = (await e2e.admin.fulfillment.get(`/admin/sellers/${DEMO.sellerId}`)).data.policy;
    const strict = { minMarginBps: policy.minMarginBps, maxCost: { amount: '1.00', currency: 'USD' }, purchaseChannel: policy.purchaseChannel, fxRates: policy.fxRates };
    expect((await e2e.admin.fulfillment.put(`/admin/sellers/${DEMO.sellerId}/policy`, strict)).status).toBe(200);
    const sent = await sendDemoOrder(e2e.pipeline.world, e2e.pipeline.urls.ingest, 'ebay');
    reviewOrderId = orderIdFor('EBAY', sent.externalOrderId);
    await waitFor(async () => {
      const r = await e2e.admin.fulfillment.get(`/admin/orders/${reviewOrderId}`);
      return r.status === 200 && r.data.state === 'NEEDS_REVIEW' && r.data.reason?.code === 'PRICE_ABOVE_MAX';
    }, { timeoutMs: 60_000, intervalMs: 300, description: 'the eBay order in review for PRICE_ABOVE_MAX' });
    expect((await e2e.admin.fulfillment.put(`/admin/sellers/${DEMO.sellerId}/policy`, { ...strict, maxCost: null })).status).toBe(200);

    await admin.goto(`${consoleServer.url}/review`);
    const row = await text(admin);
    expect(row).toContain(reviewOrderId);
    expect(row).toContain('PRICE_ABOVE_MAX');
    expect(row).toMatch(/supplierCost\s+\d+\.\d{2} USD/);
    expect(await unlabelled(admin)).toEqual([]);
    await shot(admin, '04-review-queue');

    // Without a reason the browser does not submit; the server refuses it too (400).
    await admin.type(`#ap-reason-${reviewOrderId}`, 'supplier raised the price; margin still fine');
    await Promise.all([admin.waitForNavigation(), admin.click(`form[action="/review/${reviewOrderId}/approve"] button`)]);
    expect(new URL(admin.url()).pathname).toBe(`/orders/${reviewOrderId}`);
    const timeline = await text(admin);
    expect(timeline).toContain('Operator approve');
    expect(timeline).toContain('by e2e-admin: “supplier raised the price; margin still fine”');
    // fulfillment records the credential it was called with (the console's service credential: a caller-chosen
    // header no longer names the actor); the person who acted is in the console's own audit entry above
    expect(timeline).toContain('operator approval by admin');
    await shot(admin, '05-order-after-approval');
    // and the approved order goes on to be bought
    await waitFor(async () => (await e2e.admin.fulfillment.get(`/admin/orders/${reviewOrderId}`)).data.state === 'PURCHASED', { timeoutMs: 60_000, intervalMs: 300, description: 'the approved order purchased' });

    await admin.goto(`${consoleServer.url}/audit`);
    const audit = await text(admin);
    expect(audit).toContain('approve');
    expect(audit).toContain('reveal-personal-data');
    await shot(admin, '10-audit');
  }, 150_000);

  it('shows stuck work, payouts and the ledger with a CSV statement', async () => {
    await admin.goto(`${consoleServer.url}/stuck`);
    expect(await text(admin)).toContain('Stuck work');
    expect(await unlabelled(admin)).toEqual([]);
    await shot(admin, '06-stuck-work');

    await admin.goto(`${consoleServer.url}/payouts`);
    const payouts = await text(admin);
    expect(payouts).toContain(mlOrderId);
    expect(payouts).toMatch(/demo-seller\s+CLP/);
    await shot(admin, '07-payouts');

    await admin.goto(`${consoleServer.url}/ledger?seller=${DEMO.sellerId}`);
    const ledger = await text(admin);
    expect(ledger).toContain('Trial balance balanced');
    expect(ledger).toContain(mlOrderId);
    // the ML sale's journal entry with its postings
    expect(ledger).toMatch(/SALE sale sale-ord_\w+/);
    expect(ledger).toMatch(/seller_payable\s+-9240 CLP/);
    await shot(admin, '08-ledger');
    const csv = await admin.evaluate(async (url) => (await fetch(url)).text(), `/ledger/statement.csv?seller=${DEMO.sellerId}`);
    expect(csv.split('\n')[0]).toMatch(/order/i);
    expect(csv).toContain(mlOrderId);
  }, 60_000);

  it('runs a replay dry run: how many messages each group would get again, refused while the group has members', async () => {
    await admin.goto(`${consoleServer.url}/kafka`);
    expect(await text(admin)).toContain(`${e2e.namespace}.postsale.orders.v1`);
    await admin.select('#r-topic', `${e2e.namespace}.postsale.orders.v1`);
    await Promise.all([admin.waitForNavigation(), admin.click('form[action="/kafka/dry-run"] button')]);
    const rows = await admin.$$eval('tr.dry-run-group', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '')));
    const fulfillment = rows.find((r) => r[0] === `${e2e.namespace}.fulfillment.orders`);
    // two orders were received: both re-delivered from offset 0, both skipped by the inbox; the running service is a member
    expect(fulfillment?.[1]).toBe('2');
    expect(fulfillment?.[2]).toBe('2');
    expect(Number(fulfillment?.[4])).toBeGreaterThan(0);
    expect(fulfillment?.[5]).toMatch(/^refused/);
    // "inbox would skip" is asked of fulfillment itself (its inbox holds both events), not inferred from offsets
    expect(fulfillment?.[6]).toBe('fulfillment inbox holds 2 of 2 event(s): skipped as already applied');
    expect(await unlabelled(admin)).toEqual([]);
    await shot(admin, '09-kafka-dry-run');
    // the dry run moved nothing: the group's lag is still zero
    const kafkaAdmin = e2e.kafka.admin();
    await kafkaAdmin.connect();
    const [committed] = await kafkaAdmin.fetchOffsets({ groupId: `${e2e.namespace}.fulfillment.orders`, topics: [`${e2e.namespace}.postsale.orders.v1`] }).finally(() => kafkaAdmin.disconnect());
    expect(committed!.partitions.reduce((n, p) => n + Number(p.offset === '-1' ? 0 : p.offset), 0)).toBe(2);
  }, 60_000);

  it('shows a dead letter with its reason, and a redrive dry run says which group tries again', async () => {
    // A poison message (not Avro) on the orders topic: each consuming group dead-letters it with the reason and goes on.
    const producer = e2e.kafka.producer(producerConfig());
    await producer.connect();
    await producer.send({ topic: `${e2e.namespace}.postsale.orders.v1`, messages: [{ key: 'ord_poison', value: Buffer.from('not an avro record') }] }).finally(() => producer.disconnect());
    await waitFor(async () => (await listDeadLetters(e2e.kafka, e2e.namespace)).length >= 2, { timeoutMs: 60_000, intervalMs: 1000, description: 'two dead letters (fulfillment and sales)' });

    await admin.goto(`${consoleServer.url}/kafka`);
    const letters = await admin.$$eval('tr.dead-letter', (trs) => trs.map((tr) => (tr as HTMLElement).innerText));
    expect(letters).toHaveLength(2);
    expect(letters.every((l) => l.includes('UNDECODABLE') && l.includes('ord_poison'))).toBe(true);
    await Promise.all([admin.waitForNavigation(), admin.click('tr.dead-letter form[action="/kafka/redrive/dry-run"] button')]);
    const outcomes = await admin.$$eval('tr.redrive-group', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim())));
    expect(outcomes.filter(([, o]) => o === 'tries again')).toHaveLength(1);
    expect(outcomes.filter(([, o]) => o === 'skips (already applied)')).toHaveLength(1);
    await shot(admin, '12-kafka-dead-letters-redrive-dry-run');
    // nothing was published: both letters are still waiting
    expect((await listDeadLetters(e2e.kafka, e2e.namespace)).filter((l) => !l.redriven)).toHaveLength(2);
  }, 90_000);

  it('a read-only operator sees no write buttons, personal data stays masked, and the server refuses writes anyway', async () => {
    const context = await browser.createBrowserContext();
    const operator = await signIn(context, 'e2e-operator', OPERATOR_TOKEN);
    expect(await header(operator)).toContain('e2e-operator · operator (read-only)');
    for (const path of ['/review', '/kafka', `/orders/${mlOrderId}`, '/payouts']) {
      await operator.goto(`${consoleServer.url}${path}`);
      expect({ path, writeButtons: await operator.$$eval('button.write', (b) => b.length) }).toEqual({ path, writeButtons: 0 });
    }
    const shipTo = (await e2e.admin.fulfillment.get(`/admin/orders/${mlOrderId}`)).data.shipTo as { fullName: string };
    expect(await text(operator)).not.toContain(shipTo.fullName);
    await operator.goto(`${consoleServer.url}/review`);
    await shot(operator, '11-review-queue-read-only');

    // The server refuses a write even with the operator's valid session and CSRF token.
    const cookie = (await operator.cookies()).find((c) => c.name === 'postsale_console')!;
    const csrf = await operator.$eval('input[name=_csrf]', (i) => (i as HTMLInputElement).value);
    const post = (path: string, body: Record<string, string>, withCookie = `${cookie.name}=${cookie.value}`) =>
      axios.post(`${consoleServer.url}${path}`, new URLSearchParams(body).toString(), {
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: withCookie }, maxRedirects: 0, validateStatus: () => true,
      });
    expect((await post(`/review/${reviewOrderId}/retry`, { _csrf: csrf, reason: 'trying as operator' })).status).toBe(403);
    expect((await post(`/orders/${mlOrderId}/reveal`, { _csrf: csrf, reason: 'curious' })).status).toBe(403);
    expect((await post('/kafka/replay', { _csrf: csrf, reason: 'x', topic: 't', group: 'g', from: '0' })).status).toBe(403);
    // without the CSRF token even the admin is refused; without a session, nobody
    const adminCookie = (await admin.cookies()).find((c) => c.name === 'postsale_console')!;
    expect((await post(`/review/${reviewOrderId}/retry`, { reason: 'no token' }, `${adminCookie.name}=${adminCookie.value}`)).status).toBe(403);
    expect((await post(`/review/${reviewOrderId}/retry`, { _csrf: csrf, reason: 'no session' }, '')).status).toBe(401);
    // a tampered cookie is no session
    expect((await axios.get(`${consoleServer.url}/review`, { headers: { cookie: `${cookie.name}=${cookie.value.replace(/^./, 'x')}` }, maxRedirects: 0, validateStatus: () => true })).status).toBe(303);
    await context.close();
  }, 60_000);

  it('`postsale orders show` prints the same timeline as text, --json as data, raw deliveries only with --raw', () => {
    const env = {
      ...process.env, TOPIC_NAMESPACE: e2e.namespace, POSTSALE_ADMIN_TOKEN: e2e.operator.POSTSALE_ADMIN_TOKEN, INGEST_URL: e2e.pipeline.urls.ingest,
      FULFILLMENT_URL: e2e.pipeline.urls.fulfillment, SALES_URL: e2e.pipeline.urls.sales, PAYOUTS_URL: e2e.pipeline.urls.payouts,
      KAFKA_BROKERS: e2e.operator.KAFKA_BROKERS.join(','), SCHEMA_REGISTRY_URL: e2e.operator.SCHEMA_REGISTRY_URL, NODE_OPTIONS: '',
    };
    const postsale = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'packages', 'cli', 'dist', 'postsale.js'), ...args], { env, encoding: 'utf8', timeout: 60_000 });
    const cli = (...args: string[]) => postsale('orders', 'show', ...args);
    const textRun = cli(mlExternalId);
    expect(textRun.status).toBe(0);
    expect(textRun.stdout.split('\n')[0]).toBe(`order ${mlOrderId}  MERCADOLIBRE ${mlExternalId}  seller ${DEMO.sellerId}`);
    expect(textRun.stdout).toMatch(/payouts\s+PayoutSent/);
    expect(textRun.stdout.split('\n').length).toBeLessThan(80);
    expect(textRun.stdout).not.toContain('"rawBody"');

    const jsonRun = cli(mlOrderId, '--json');
    const data = JSON.parse(jsonRun.stdout) as { summary: { orderId: string }; entries: Array<{ event: string }>; raw?: unknown };
    expect(data.summary.orderId).toBe(mlOrderId);
    expect(data.entries.some((e) => e.event === 'PayoutSent')).toBe(true);
    expect(data.raw).toBeUndefined();
    const raw = JSON.parse(cli(mlOrderId, '--raw').stdout) as { raw: { ingest: { deliveries: unknown[] } } };
    expect(raw.raw.ingest.deliveries.length).toBeGreaterThan(0);

    // the replay dry run in the terminal: the orders topic now holds the two orders and the poison message
    const dry = postsale('replay', '--topic', `${e2e.namespace}.postsale.orders.v1`, '--group', `${e2e.namespace}.fulfillment.orders`, '--from', '0', '--dry-run');
    expect(dry.status).toBe(0);
    // the inbox's own answer: it holds both orders' events; the poison message has no event id and is dead-lettered again
    expect(dry.stdout).toContain('would re-deliver 3 message(s) (fulfillment inbox holds 2 of 2 event(s): skipped as already applied; 1 undecodable (dead-lettered again)), 0 not yet consumed; refused now: group has 1 active member');
  }, 90_000);

  it('cancels an order in review with a reason (admin only): the action is in its timeline and sales ends it with nothing to pay', async () => {
    // in review for PRICE_ABOVE_MAX, nothing bought. (The first call after the long CLI test may meet a keep-alive
    // socket the service just closed: asked again until it answers.)
    const policy = await waitFor(async () => (await e2e.admin.fulfillment.get(`/admin/sellers/${DEMO.sellerId}`).catch(() => undefined))?.data.policy, {
      timeoutMs: 10_000, intervalMs: 200, description: "the demo seller's purchase policy",
    });
    const strict = { minMarginBps: policy.minMarginBps, maxCost: { amount: '1.00', currency: 'USD' }, purchaseChannel: policy.purchaseChannel, fxRates: policy.fxRates };
    expect((await e2e.admin.fulfillment.put(`/admin/sellers/${DEMO.sellerId}/policy`, strict)).status).toBe(200);
    const sent = await sendDemoOrder(e2e.pipeline.world, e2e.pipeline.urls.ingest, 'ebay');
    const orderId = orderIdFor('EBAY', sent.externalOrderId);
    await waitFor(async () => {
      const r = await e2e.admin.fulfillment.get(`/admin/orders/${orderId}`);
      return r.status === 200 && r.data.state === 'NEEDS_REVIEW' && r.data.reason?.code === 'PRICE_ABOVE_MAX';
    }, { timeoutMs: 60_000, intervalMs: 300, description: 'the eBay order in review for PRICE_ABOVE_MAX' });
    expect((await e2e.admin.fulfillment.put(`/admin/sellers/${DEMO.sellerId}/policy`, { ...strict, maxCost: null })).status).toBe(200);
    const cancelForm = `form[action="/review/${orderId}/cancel"]`;

    // a read-only operator sees the order but no Cancel, and the server refuses the cancel anyway
    const context = await browser.createBrowserContext();
    const operator = await signIn(context, 'e2e-operator', OPERATOR_TOKEN);
    await operator.goto(`${consoleServer.url}/review`);
    expect(await text(operator)).toContain(orderId);
    expect(await operator.$$(cancelForm)).toHaveLength(0);
    const cookie = (await operator.cookies()).find((c) => c.name === 'postsale_console')!;
    const csrf = await operator.$eval('input[name=_csrf]', (i) => (i as HTMLInputElement).value);
    const refused = await axios.post(`${consoleServer.url}/review/${orderId}/cancel`, new URLSearchParams({ _csrf: csrf, reason: 'operator trying to cancel' }).toString(), {
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${cookie.name}=${cookie.value}` }, maxRedirects: 0, validateStatus: () => true,
    });
    expect(refused.status).toBe(403);
    await context.close();
    expect((await e2e.admin.fulfillment.get(`/admin/orders/${orderId}`)).data.state).toBe('NEEDS_REVIEW');

    await admin.goto(`${consoleServer.url}/review`);
    expect(await admin.$$(cancelForm)).toHaveLength(1);
    expect(await unlabelled(admin)).toEqual([]);
    // without a reason the browser does not submit
    expect(await admin.$eval(`#cn-reason-${orderId}`, (i) => (i as HTMLInputElement).checkValidity())).toBe(false);
    await shot(admin, '13-review-queue-cancel');
    // keyboard: type the reason in the labelled field, Enter submits its form
    await admin.focus(`#cn-reason-${orderId}`);
    await admin.keyboard.type('buyer asked to cancel; nothing bought yet');
    await Promise.all([admin.waitForNavigation(), admin.keyboard.press('Enter')]);
    expect(new URL(admin.url()).pathname).toBe(`/orders/${orderId}`);
    const timeline = await text(admin);
    expect(timeline).toContain('Done: cancel.');
    expect(timeline).toContain('Operator cancel');
    expect(timeline).toContain('by e2e-admin: “buyer asked to cancel; nothing bought yet”');
    // fulfillment's own record: the transition and its audit row, with the credential's actor
    expect(timeline).toContain('NEEDS_REVIEW → CANCELLED');
    expect(timeline).toContain('operator cancel by admin');
    expect(timeline).toMatch(/Admin CANCEL_ORDER\s+NEEDS_REVIEW → CANCELLED\s+by admin: “buyer asked to cancel; nothing bought yet”/);
    // sales reaches its terminal state from fulfillment's PurchaseFailed: no sale, nothing to pay, the buyer refunded by the marketplace
    await waitFor(async () => {
      await admin.reload();
      return (await text(admin)).includes('is refunded by the marketplace');
    }, { timeoutMs: 30_000, intervalMs: 500, description: 'sales CANCELLED in the timeline' });
    const sales = (await e2e.admin.sales.get(`/admin/orders/${orderId}`)).data;
    expect(sales).toMatchObject({ state: 'CANCELLED', journal: [] });
    expect(sales.stateReason).toMatch(/no sale, no supplier cost, no commission, nothing to pay; the buyer's \d+\.\d{2} USD \(\d+ minor units\) is refunded by the marketplace/);
    expect((await e2e.admin.sales.get('/admin/ledger/trial-balance')).data.balanced).toBe(true);
    // payouts pays nobody for it
    const payouts = await e2e.admin.payouts.get(`/admin/orders/${orderId}`);
    expect(payouts.status === 404 || payouts.data.payouts.length === 0).toBe(true);
    await shot(admin, '14-order-after-cancel');
  }, 150_000);

  it('retries a failed payout and cancels it once unclaimed, from the payouts page, each with a reason shown in the timeline', async () => {
    // PayPal (the sandbox fake) fails the seller's next payout item, then leaves the retried one UNCLAIMED
    let outcome: 'FAILED' | 'UNCLAIMED' | undefined = 'FAILED';
    const paypal = e2e.pipeline.world.paypal;
    paypal.setPayoutOutcome((item) => outcome === 'FAILED' && item.receiver === DEMO.payeeEmail, 'FAILED', { errorName: 'RECEIVER_ACCOUNT_LOCKED' });
    paypal.setPayoutOutcome((item) => outcome === 'UNCLAIMED' && item.receiver === DEMO.payeeEmail, 'UNCLAIMED');
    const sent = await sendDemoOrder(e2e.pipeline.world, e2e.pipeline.urls.ingest, 'mercadolibre');
    const orderId = orderIdFor('MERCADOLIBRE', sent.externalOrderId);
    type Intent = { id: string; recipient: string; status: string; items?: Array<{ status: string }> };
    const sellerPayout = async () => ((await e2e.admin.payouts.get(`/admin/orders/${orderId}`)).data?.payouts as Intent[] | undefined)?.find((p) => p.recipient === 'SELLER');
    const failed = await waitFor(async () => ((await sellerPayout())?.status === 'FAILED' ? sellerPayout() : undefined), { timeoutMs: 120_000, intervalMs: 500, description: "the seller's payout FAILED at PayPal" });
    outcome = 'UNCLAIMED';

    const context = await browser.createBrowserContext();
    const operator = await signIn(context, 'e2e-operator', OPERATOR_TOKEN);
    await operator.goto(`${consoleServer.url}/payouts?status=FAILED`);
    expect(await text(operator)).toContain(orderId);
    expect(await operator.$$eval('button.write', (b) => b.length)).toBe(0);
    await context.close();

    await admin.goto(`${consoleServer.url}/payouts?status=FAILED`);
    const row = `tr.payout[data-payout="${failed!.id}"]`;
    expect(await admin.$$(`${row} form[action="/payouts/${failed!.id}/retry"]`)).toHaveLength(1);
    expect(await admin.$$(`${row} form[action="/payouts/${failed!.id}/cancel"]`)).toHaveLength(0);
    expect(await unlabelled(admin)).toEqual([]);
    await shot(admin, '15-payouts-failed-retry');
    await admin.focus(`#po-retry-${failed!.id}`);
    await admin.keyboard.type('seller fixed the PayPal account');
    await Promise.all([admin.waitForNavigation(), admin.keyboard.press('Enter')]);
    expect(new URL(admin.url()).pathname).toBe(`/orders/${orderId}`);
    expect(await text(admin)).toContain('by e2e-admin: “seller fixed the PayPal account”');
    expect(await text(admin)).toContain('operator retry by admin');

    // the retried item is UNCLAIMED at PayPal: the payouts page offers Cancel (with PayPal's 30-day countdown)
    await waitFor(async () => (await sellerPayout())?.items?.some((i) => i.status === 'UNCLAIMED'), { timeoutMs: 60_000, intervalMs: 500, description: 'the retried payout UNCLAIMED' });
    await admin.goto(`${consoleServer.url}/payouts?status=SUBMITTED`);
    expect(await admin.$eval(row, (tr) => (tr as HTMLElement).innerText)).toMatch(/UNCLAIMED \d+ day\(s\) until PayPal returns it/);
    expect(await admin.$$(`${row} form[action="/payouts/${failed!.id}/retry"]`)).toHaveLength(0);
    expect(await unlabelled(admin)).toEqual([]);
    await shot(admin, '16-payouts-unclaimed-cancel');
    await admin.focus(`#po-cancel-${failed!.id}`);
    await admin.keyboard.type('seller will never claim it; paying another way');
    await Promise.all([admin.waitForNavigation(), admin.keyboard.press('Enter')]);
    expect(await text(admin)).toContain('by e2e-admin: “seller will never claim it; paying another way”');
    // PayPal cancels the item (the reconciler asks it), the payout is RETURNED: owed again, and the ledger says so
    await waitFor(async () => (await sellerPayout())?.status === 'RETURNED', { timeoutMs: 60_000, intervalMs: 500, description: 'the cancelled payout RETURNED' });
    const audit = (await e2e.admin.payouts.get('/admin/audit', { params: { target: `payout:${failed!.id}` } })).data.audit as Array<{ action: string; reason: string }>;
    expect(audit.map((a) => [a.action, a.reason])).toEqual(expect.arrayContaining([['RETRY_PAYOUT', 'seller fixed the PayPal account'], ['CANCEL_PAYOUT', 'seller will never claim it; paying another way']]));
    await admin.goto(`${consoleServer.url}/orders/${orderId}`);
    await shot(admin, '17-order-after-payout-cancel');
    outcome = undefined;
  }, 240_000);

  it('no page logged a console error', () => {
    expect(consoleErrors).toEqual([]);
  });
});
