import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { BrowserLoginError, type BrowserCheckoutResult, type BrowserOrderInput, type WebCheckout, type WebLogin, type WebOrderRow } from '../domain/ports';

export { BrowserLoginError };
export type { BrowserCheckoutResult, BrowserOrderInput, WebLogin, WebOrderRow };

/**
 * The browser fallback: drives the supplier's web checkout in a real headless Chromium (login, product page with SKU
 * choice, address form, place order with our out_order_id as the note to seller, confirmation page). A fresh profile
 * per run; the browser is always closed. Without an order number on the confirmation page nothing is purchased.
 */
export interface BrowserCheckoutOptions {
  chromiumPath: string;
  webUrl: string;
  timeoutMs: number;
}

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export class CheckoutBrowser implements WebCheckout {
  /** One browser session at a time per process: purchases run concurrently, but each Chromium costs a core. */
  private sessions: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: BrowserCheckoutOptions) {}

  async placeOrder(login: WebLogin, input: BrowserOrderInput): Promise<BrowserCheckoutResult> {
    return this.withPage(login, async (page) => {
      const country = input.address.country;
      await this.go(page, `/item/${encodeURIComponent(input.productId)}?ship_to=${encodeURIComponent(country)}`);
      if (!(await page.$('[data-testid="buy-form"]'))) return { outcome: 'REFUSED', code: 'ITEM_UNAVAILABLE', message: 'the product page has no buy form' };
      const chosen = await page.select('[data-testid="sku-select"]', input.skuAttr);
      if (!chosen.includes(input.skuAttr)) return { outcome: 'REFUSED', code: 'SKU_NOT_OFFERED', message: 'the product page does not offer the mapped SKU' };
      await page.$eval('[data-testid="quantity"]', (el, q) => ((el as HTMLInputElement).value = q), String(input.quantity));
      await Promise.all([page.waitForNavigation(), page.click('[data-testid="buy-now"]')]);
      if (await page.$('[data-testid="captcha"]')) return { outcome: 'REFUSED', code: 'CAPTCHA', message: 'the checkout asks for a captcha' };
      if (!(await page.$('[data-testid="address-form"]'))) return { outcome: 'REFUSED', code: 'CHECKOUT_UNAVAILABLE', message: 'no address form' };
      const fields: Array<[string, string | undefined]> = [
        ['full-name', input.address.full_name],
        ['address', input.address.address],
        ['address2', input.address.address2],
        ['city', input.address.city],
        ['province', input.address.province],
        ['zip', input.address.zip],
        ['mobile-no', input.address.mobile_no],
        ['order-memo', input.memo],
      ];
      for (const [testId, value] of fields) {
        await page.$eval(`[data-testid="${testId}"]`, (el, v) => ((el as HTMLInputElement).value = v), value ?? '');
      }
      await page.select('[data-testid="country"]', country);
      // From here on an order may exist even if we never see the answer.
      try {
        await Promise.all([page.waitForNavigation({ timeout: this.options.timeoutMs }), page.click('[data-testid="place-order"]')]);
      } catch (error) {
        return { outcome: 'UNKNOWN', code: 'CONFIRMATION_TIMEOUT', message: error instanceof Error ? error.message : 'no confirmation' };
      }
      const orderId = await textOf(page, '[data-testid="order-number"]');
      if (orderId) {
        const total = await page.$('[data-testid="order-total"]');
        const amount = total ? await total.evaluate((el) => el.getAttribute('data-amount')) : null;
        const currency = total ? await total.evaluate((el) => el.getAttribute('data-currency')) : null;
        return {
          outcome: 'PLACED',
          orderId,
          amount,
          currency,
          status: await textOf(page, '[data-testid="order-status"]'),
          duplicate: (await page.$('[data-testid="duplicate-notice"]')) !== null,
        };
      }
      const errorCode = await page.$('[data-testid="checkout-error"]');
      if (errorCode) {
        return { outcome: 'REFUSED', code: (await errorCode.evaluate((el) => el.getAttribute('data-error-code'))) ?? 'CHECKOUT_ERROR', message: (await textOf(page, '[data-testid="checkout-error"]')) ?? '' };
      }
      if (await page.$('[data-testid="payment-error"]')) return { outcome: 'REFUSED', code: 'PAYMENT_DECLINED', message: 'payment declined; no order placed' };
      return { outcome: 'UNKNOWN', code: 'NO_ORDER_NUMBER', message: 'the confirmation page shows no order number' };
    });
  }

  /** Resolution for an unknown outcome: the "my orders" page filtered by our memo. */
  async findOrdersByMemo(login: WebLogin, memo: string): Promise<WebOrderRow[]> {
    return this.withPage(login, async (page) => {
      await this.go(page, `/orders?memo=${encodeURIComponent(memo)}`);
      const rows = await page.$$eval('[data-testid="order-row"]', (els) =>
        els.map((el) => ({
          orderId: el.getAttribute('data-order-id') ?? '',
          status: el.getAttribute('data-status') ?? '',
          memo: el.getAttribute('data-memo') ?? '',
          total: el.querySelectorAll('td')[2]?.textContent?.trim() ?? '',
        })),
      );
      return rows.filter((r) => r.memo === memo && r.orderId);
    });
  }

  private async go(page: Page, path: string): Promise<void> {
    await page.goto(new URL(path, this.options.webUrl).toString(), { waitUntil: 'domcontentloaded', timeout: this.options.timeoutMs });
  }

  private withPage<T>(login: WebLogin, work: (page: Page) => Promise<T>): Promise<T> {
    const run = this.sessions.then(() => this.session(login, work));
    this.sessions = run.catch(() => undefined);
    return run;
  }

  private async session<T>(login: WebLogin, work: (page: Page) => Promise<T>): Promise<T> {
    const profile = await mkdtemp(join(tmpdir(), 'postsale-checkout-'));
    let browser: Browser | undefined;
    try {
      // loaded on the first web checkout: the library costs ≈ 38 MB of RSS, and most sellers buy through the API
      const { default: puppeteer } = await import('puppeteer-core');
      browser = await puppeteer.launch({ executablePath: this.options.chromiumPath, args: [...ARGS, `--user-data-dir=${profile}`], timeout: this.options.timeoutMs });
      const page = await browser.newPage();
      page.setDefaultTimeout(this.options.timeoutMs);
      await this.go(page, '/login');
      await page.type('[data-testid="login-email"]', login.email);
      await page.type('[data-testid="login-password"]', login.password);
      await Promise.all([page.waitForNavigation(), page.click('[data-testid="login-submit"]')]);
      if (await page.$('[data-testid="login-error"]')) throw new BrowserLoginError();
      return await work(page);
    } finally {
      await browser?.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

async function textOf(page: Page, selector: string): Promise<string | null> {
  const el = await page.$(selector);
  if (!el) return null;
  const value = await el.evaluate((node) => node.textContent?.trim() ?? '');
  return value || null;
}
