import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { requireSystemProgram } from '@postsale/runtime/testing';
import { callAliExpress, startAliExpressFake, type AliExpressFake, type AliExpressSellerCredentials as SellerCredentials } from '../src/aliexpress';

/** The supplier's web checkout: driven by a real headless Chromium, and by plain HTTP for the failure switches. */

const PRODUCT = {
  productId: '1005007000001',
  subject: 'Desk lamp',
  skus: [
    { skuId: '12000037000001', skuAttr: '14:193#Black', prices: { US: '20.00', CL: '22.00', default: '21.00' }, stock: 10, shippingCost: { default: '1.50' } },
    { skuId: '12000037000002', skuAttr: '14:200#White', prices: { default: '19.00' }, stock: 10 },
  ],
};
const ADDRESS = { full_name: 'Ana Pérez', address: 'Av. Providencia 1234', city: 'Santiago', province: 'RM', zip: '7500000', country: 'CL', mobile_no: '912345678' };

async function startFake(): Promise<{ fake: AliExpressFake; seller: SellerCredentials }> {
  const fake = await startAliExpressFake();
  fake.seedProduct(PRODUCT);
  fake.registerWebAccount({ email: 'buyer@example.com', password: 'correct horse', account: 'seller-a' });
  const seller = fake.registerSeller({ account: 'seller-a' });
  return { fake, seller };
}

describe('AliExpress web checkout in a real Chromium', () => {
  let fake: AliExpressFake;
  let seller: SellerCredentials;
  let browser: Browser | undefined;
  let profile: string | undefined;

  beforeEach(async () => {
    ({ fake, seller } = await startFake());
  });
  afterEach(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await fake.stop();
  });

  async function buy(page: Page, memo: string): Promise<string> {
    await page.goto(`${fake.url}/item/${PRODUCT.productId}?ship_to=CL`);
    if (page.url().includes('/login')) {
      await page.type('[data-testid=login-email]', 'buyer@example.com');
      await page.type('[data-testid=login-password]', 'correct horse');
      await Promise.all([page.waitForNavigation(), page.click('[data-testid=login-submit]')]);
    }
    expect(await page.$eval('[data-testid=product-title]', (e) => e.textContent)).toBe('Desk lamp');
    await page.select('[data-testid=sku-select]', '14:193#Black');
    await page.$eval('[data-testid=quantity]', (e) => { (e as HTMLInputElement).value = ''; });
    await page.type('[data-testid=quantity]', '2');
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=buy-now]')]);
    for (const [name, value] of Object.entries(ADDRESS)) {
      if (name === 'country') await page.select('[data-testid=country]', value);
      else await page.type(`[name=${name}]`, value);
    }
    await page.type('[data-testid=order-memo]', memo);
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=place-order]')]);
    return (await page.$eval('[data-testid=order-number]', (e) => e.textContent ?? '')).trim();
  }

  it('a real Chromium buys through the web checkout and sees an order number', async () => {
    profile = mkdtempSync(join(tmpdir(), 'ae-chromium-'));
    browser = await puppeteer.launch({
      executablePath: requireSystemProgram('chromium', 'chromium'),
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`],
    });
    const page = await browser.newPage();
    const orderNumber = await buy(page, 'po-web-1');
    expect(orderNumber).toMatch(/^\d{16}$/);
    const total = await page.$eval('[data-testid=order-total]', (e) => ({ amount: e.getAttribute('data-amount'), currency: e.getAttribute('data-currency') }));
    expect(total).toEqual({ amount: '47.00', currency: 'USD' }); // 2 × 22.00 (CL price) + 2 × 1.50 freight

    // the web order is the order the API sees
    expect(fake.orders()).toEqual([expect.objectContaining({ orderId: orderNumber, channel: 'web', account: 'seller-a', memo: 'po-web-1', status: 'WAIT_SELLER_SEND_GOODS' })]);
    const viaApi = await callAliExpress({ gatewayUrl: fake.gatewayUrl, ...seller }, 'aliexpress.trade.ds.order.get', { single_order_query: JSON.stringify({ order_id: orderNumber }) });
    expect(viaApi).toHaveProperty('aliexpress_trade_ds_order_get_response.result.order_amount', { amount: '47.00', currency_code: 'USD' });

    // Corrections: the web checkout does not deduplicate by memo: the same memo again is a second order
    expect(await buy(page, 'po-web-1')).not.toBe(orderNumber);
    expect(fake.orders()).toHaveLength(2);
  });
});

/** A tiny cookie-keeping HTTP client, enough to drive the forms without a browser. */
function webClient(base: string) {
  let cookie = '';
  async function request(path: string, form?: Record<string, string>): Promise<{ status: number; location: string | null; html: string }> {
    const response = await fetch(`${base}${path}`, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    const setCookie = response.headers.get('set-cookie');
    if (setCookie) cookie = setCookie.split(';')[0] ?? '';
    return { status: response.status, location: response.headers.get('location'), html: await response.text() };
  }
  async function startCheckout(): Promise<string> {
    const started = await request('/checkout/start', { product_id: PRODUCT.productId, sku_attr: '14:200#White', quantity: '1', ship_to: 'CL' });
    expect(started.status).toBe(303);
    return started.location ?? '';
  }
  return { request, startCheckout };
}

const testId = (html: string, id: string) => new RegExp(`data-testid="${id}"[^>]*>([^<]*)<`).exec(html)?.[1];

describe('AliExpress web checkout over plain HTTP', () => {
  let fake: AliExpressFake;
  beforeEach(async () => {
    ({ fake } = await startFake());
  });
  afterEach(() => fake.stop());

  async function loggedIn() {
    const web = webClient(fake.url);
    const page = await web.request(`/item/${PRODUCT.productId}`);
    expect(page.status).toBe(302);
    expect(page.location).toBe(`/login?next=${encodeURIComponent(`/item/${PRODUCT.productId}`)}`);
    expect((await web.request('/login', { email: 'buyer@example.com', password: 'wrong', next: '/' })).status).toBe(401);
    const login = await web.request('/login', { email: 'buyer@example.com', password: 'correct horse', next: `/item/${PRODUCT.productId}` });
    expect(login).toMatchObject({ status: 303, location: `/item/${PRODUCT.productId}` });
    return web;
  }

  it('a declined payment shows an error and creates no order', async () => {
    const web = await loggedIn();
    fake.setWebCheckout({ paymentDeclined: true });
    const checkout = await web.startCheckout();
    const placed = await web.request(`${checkout}/place`, { ...ADDRESS, order_memo: 'po-7' });
    const done = await web.request(placed.location ?? '');
    expect(done.status).toBe(402);
    expect(testId(done.html, 'payment-error')).toMatch(/declined/);
    expect(done.html).not.toContain('data-testid="order-number"');
    expect(fake.orders()).toHaveLength(0);
  });

  it('a captcha replaces the checkout form and refuses to place the order', async () => {
    const web = await loggedIn();
    fake.setWebCheckout({ captcha: true });
    const checkout = await web.startCheckout();
    const page = await web.request(checkout);
    expect(page.html).toContain('data-testid="captcha"');
    expect(page.html).not.toContain('data-testid="place-order"');
    const placed = await web.request(`${checkout}/place`, { ...ADDRESS, order_memo: 'po-8' });
    expect(placed.status).toBe(403);
    expect(fake.orders()).toHaveLength(0);
  });

  it('an invalid address is shown back with its error code; a double submit lands on the same order, a new checkout with the same memo buys again', async () => {
    const web = await loggedIn();
    const checkout = await web.startCheckout();
    const refused = await web.request(`${checkout}/place`, { ...ADDRESS, country: 'Chile', order_memo: 'po-9' });
    expect(refused.status).toBe(422);
    expect(refused.html).toContain('data-error-code="B_DROPSHIPPER_DELIVERY_ADDRESS_VALIDATE_FAIL"');
    const placed = await web.request(`${checkout}/place`, { ...ADDRESS, order_memo: 'po-9' });
    const first = testId((await web.request(placed.location ?? '')).html, 'order-number');
    expect(first).toMatch(/^\d{16}$/);
    // a double submit of the same checkout lands on the order it placed
    expect((await web.request(`${checkout}/place`, { ...ADDRESS, order_memo: 'po-9' })).location).toBe(`${checkout}/done`);
    expect(fake.ordersByOutOrderId('po-9')).toHaveLength(1);
    // the orders page finds it by memo (how a bot resolves a checkout that timed out, BEFORE buying again)
    const list = await web.request('/orders?memo=po-9');
    expect(list.html).toContain(`data-order-id="${first}"`);
    // Corrections: a fresh checkout with the same memo is NOT deduplicated: a second order
    const again = await web.request(`${await web.startCheckout()}/place`, { ...ADDRESS, order_memo: 'po-9' });
    const second = await web.request(again.location ?? '');
    expect(testId(second.html, 'order-number')).not.toBe(first);
    expect(fake.ordersByOutOrderId('po-9')).toHaveLength(2);
  });

  it('slowMs delays the confirmation after the order already exists', async () => {
    const web = await loggedIn();
    fake.setWebCheckout({ slowMs: 300 });
    const checkout = await web.startCheckout();
    let answered = false;
    const placing = web.request(`${checkout}/place`, { ...ADDRESS, order_memo: 'po-10' }).finally(() => {
      answered = true;
    });
    // observed from the server side while the answer is still pending
    await new Promise<void>((resolve) => {
      const poll = () => (fake.orders().length === 1 ? resolve() : setImmediate(poll));
      poll();
    });
    expect(fake.ordersByOutOrderId('po-10')).toHaveLength(1);
    expect(answered).toBe(false); // a bot with a short timeout would give up here although it bought
    const placed = await placing;
    expect(placed.status).toBe(303);
  });
});
