import express, { type Express, type Request, type Response } from 'express';
import { randomBytes } from 'node:crypto';
import { placeOrder } from './place-order';
import type { FakeState } from './state';
import type { LogisticsAddress } from './types';
import {
  captchaPage,
  checkoutPage,
  declinedPage,
  donePage,
  itemPage,
  loginPage,
  messagePage,
  ordersPage,
  type CheckoutView,
} from './web-pages';

/**
 * The supplier's web checkout, for the browser-automation fallback. Orders placed here are the same orders the API
 * sees (same account, same book, same status machine), paid at once like a card checkout would be.
 *
 * No idempotency on the web (external-apis.md "Corrections": the web checkout does not deduplicate by memo): the
 * "Note to seller" field (`order_memo`) is only text the bot can search for later on the "my orders" page. A fresh
 * checkout with a memo already used places a SECOND order; only submitting the same checkout twice lands on the
 * order it already placed.
 */
interface Session {
  account: string;
  email: string;
}

interface Checkout {
  id: string;
  account: string;
  productId: string;
  skuAttr: string;
  quantity: number;
  shipTo: string;
  orderId?: string;
  duplicate?: boolean;
  declined?: boolean;
}

const COOKIE = 'ae_sid';

export function mountWebCheckout(app: Express, state: FakeState): void {
  const sessions = new Map<string, Session>();
  const checkouts = new Map<string, Checkout>();
  const form = express.urlencoded({ extended: false });
  const web = { state, sessions, checkouts };

  app.get('/', (req, res) => res.redirect(302, sessionOf(web, req) ? '/orders' : '/login'));
  app.get('/login', (req, res) => void res.type('html').send(loginPage(safeNext(req.query.next))));
  app.post('/login', form, (req, res) => login(web, req, res));
  app.post('/logout', (req, res) => {
    sessions.delete(cookieOf(req) ?? '');
    res.setHeader('Set-Cookie', `${COOKIE}=; Path=/; HttpOnly; Max-Age=0`);
    res.redirect(303, '/login');
  });
  app.get('/item/:productId', (req, res) => withSession(web, req, res, (s) => item(web, req, res, s)));
  app.post('/checkout/start', form, (req, res) => withSession(web, req, res, (s) => startCheckout(web, req, res, s)));
  app.get('/checkout/:checkoutId', (req, res) => withSession(web, req, res, (s) => showCheckout(web, req, res, s)));
  app.post('/checkout/:checkoutId/place', form, (req, res) => withSession(web, req, res, (s) => place(web, req, res, s)));
  app.get('/checkout/:checkoutId/done', (req, res) => withSession(web, req, res, (s) => done(web, req, res, s)));
  app.get('/orders', (req, res) => withSession(web, req, res, (s) => orders(web, req, res, s)));
}

type Web = { state: FakeState; sessions: Map<string, Session>; checkouts: Map<string, Checkout> };

function cookieOf(req: Request): string | undefined {
  const header = req.headers.cookie ?? '';
  const pair = header.split(';').map((p) => p.trim()).find((p) => p.startsWith(`${COOKIE}=`));
  return pair?.slice(COOKIE.length + 1) || undefined;
}

function sessionOf(web: Web, req: Request): Session | undefined {
  const sid = cookieOf(req);
  return sid ? web.sessions.get(sid) : undefined;
}

/** Only local paths: an open redirect through ?next= would be a bug on a real site too. */
function safeNext(value: unknown): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') ? value : '/orders';
}

function field(req: Request, name: string): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}

function withSession(web: Web, req: Request, res: Response, handler: (session: Session) => void): void {
  const session = sessionOf(web, req);
  if (session) return handler(session);
  // A form POST without a session cannot be replayed after login; send the bot to the login page with a useful next.
  const next = req.method === 'GET' ? req.originalUrl : '/orders';
  res.redirect(302, `/login?next=${encodeURIComponent(next)}`);
}

function login(web: Web, req: Request, res: Response): void {
  const account = web.state.accounts.webLogin(field(req, 'email'), field(req, 'password'));
  const next = safeNext(field(req, 'next'));
  if (!account) {
    res.status(401).type('html').send(loginPage(next, 'Your account name or password is incorrect.'));
    return;
  }
  const sid = randomBytes(18).toString('base64url');
  web.sessions.set(sid, { account: account.account, email: account.email });
  res.setHeader('Set-Cookie', `${COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax`);
  res.redirect(303, next);
}

function item(web: Web, req: Request, res: Response, session: Session): void {
  const product = web.state.catalog.find(String(req.params.productId));
  if (!product || !product.onSelling) {
    res.status(404).type('html').send(messagePage('Item unavailable', 'item-unavailable', 'Sorry, this item is no longer available.', session.email));
    return;
  }
  const shipTo = typeof req.query.ship_to === 'string' && req.query.ship_to ? req.query.ship_to.toUpperCase() : 'US';
  res.type('html').send(itemPage(product, shipTo, session.email));
}

function startCheckout(web: Web, req: Request, res: Response, session: Session): void {
  const product = web.state.catalog.find(field(req, 'product_id'));
  const sku = product ? web.state.catalog.resolveSku(product, field(req, 'sku_attr')) : undefined;
  const quantity = Number(field(req, 'quantity') || '1');
  if (!product || !product.onSelling || !sku || !Number.isInteger(quantity) || quantity < 1) {
    res.status(422).type('html').send(messagePage('Cannot buy', 'buy-error', 'This item, variant or quantity cannot be bought.', session.email));
    return;
  }
  const id = randomBytes(9).toString('base64url');
  const shipTo = field(req, 'ship_to').toUpperCase() || 'US';
  web.checkouts.set(id, { id, account: session.account, productId: product.productId, skuAttr: sku.skuAttr, quantity, shipTo });
  res.redirect(303, `/checkout/${id}`);
}

/** The checkout if it exists and belongs to this session's account; otherwise answers 404. */
function ownCheckout(web: Web, req: Request, res: Response, session: Session): { checkout: Checkout; view: CheckoutView } | undefined {
  const checkout = web.checkouts.get(String(req.params.checkoutId));
  const product = checkout ? web.state.catalog.find(checkout.productId) : undefined;
  if (!checkout || checkout.account !== session.account || !product) {
    res.status(404).type('html').send(messagePage('Not found', 'not-found', 'This checkout does not exist.', session.email));
    return undefined;
  }
  return { checkout, view: { id: checkout.id, product, skuAttr: checkout.skuAttr, quantity: checkout.quantity, shipTo: checkout.shipTo } };
}

function showCheckout(web: Web, req: Request, res: Response, session: Session): void {
  const own = ownCheckout(web, req, res, session);
  if (!own) return;
  if (own.checkout.orderId) return res.redirect(303, `/checkout/${own.checkout.id}/done`);
  if (web.state.web.captcha) return void res.type('html').send(captchaPage(own.view, session.email));
  res.type('html').send(checkoutPage(own.view, session.email));
}

const FORM_FIELDS = ['full_name', 'address', 'address2', 'city', 'province', 'zip', 'country', 'phone_country', 'mobile_no', 'cpf', 'order_memo'];

function place(web: Web, req: Request, res: Response, session: Session): void {
  const own = ownCheckout(web, req, res, session);
  if (!own) return;
  const { checkout, view } = own;
  if (checkout.orderId) return res.redirect(303, `/checkout/${checkout.id}/done`); // a double submit
  if (web.state.web.captcha) return void res.status(403).type('html').send(captchaPage(view, session.email));
  if (web.state.web.paymentDeclined) {
    checkout.declined = true;
    return res.redirect(303, `/checkout/${checkout.id}/done`);
  }
  const values = Object.fromEntries(FORM_FIELDS.map((name) => [name, field(req, name).trim()]));
  const memo = values.order_memo || undefined;
  const address: LogisticsAddress = { ...values, contact_person: values.full_name };
  delete address.order_memo;
  const outcome = placeOrder(web.state.placeContext(), {
    account: session.account,
    channel: 'web',
    idempotencyKey: memo,
    address,
    lines: [{ productId: checkout.productId, quantity: checkout.quantity, skuAttr: checkout.skuAttr, ...(memo ? { memo } : {}) }],
    tryToPay: true,
  });
  if (!outcome.ok) {
    res.status(422).type('html').send(checkoutPage(view, session.email, values, { code: outcome.errorCode, msg: outcome.errorMsg }));
    return;
  }
  checkout.orderId = outcome.order.orderId;
  checkout.duplicate = outcome.replayed;
  checkout.declined = false;
  // "Slow" means the order exists but the confirmation takes long: the case where a bot times out after buying.
  const slowMs = web.state.web.slowMs ?? 0;
  const redirect = () => res.redirect(303, `/checkout/${checkout.id}/done`);
  if (slowMs > 0) setTimeout(redirect, slowMs);
  else redirect();
}

function done(web: Web, req: Request, res: Response, session: Session): void {
  const own = ownCheckout(web, req, res, session);
  if (!own) return;
  const { checkout } = own;
  const order = checkout.orderId ? web.state.book.get(checkout.orderId) : undefined;
  if (order) return void res.type('html').send(donePage(checkout.id, order, checkout.duplicate ?? false, session.email));
  if (checkout.declined) return void res.status(402).type('html').send(declinedPage(checkout.id, session.email));
  res.redirect(303, `/checkout/${checkout.id}`);
}

function orders(web: Web, req: Request, res: Response, session: Session): void {
  const memo = typeof req.query.memo === 'string' ? req.query.memo : '';
  const mine = web.state.book
    .all()
    .filter((o) => o.account === session.account)
    .filter((o) => !memo || (o.memo ?? '').includes(memo) || o.items.some((i) => (i.memo ?? '').includes(memo)))
    .sort((a, b) => b.createdAt - a.createdAt);
  res.type('html').send(ordersPage(mine, session.email, memo));
}
