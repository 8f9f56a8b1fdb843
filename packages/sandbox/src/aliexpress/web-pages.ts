import { forCountry, type CatalogProduct } from './catalog';
import { countryOptions } from './countries';
import type { SupplierOrder } from './types';

/**
 * The supplier site's HTML: plain server-rendered forms, no JavaScript, so a headless browser (or a plain HTTP
 * client) can drive it. Every element a bot needs carries a stable `data-testid`; every field has a `name`.
 */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function layout(title: string, body: string, email?: string): string {
  const who = email
    ? `<span data-testid="account-email">${escapeHtml(email)}</span>
       <form method="post" action="/logout" style="display:inline"><button type="submit" data-testid="logout">Sign out</button></form>`
    : '<a href="/login" data-testid="login-link">Sign in</a>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} - AliExpress (sandbox)</title></head>
<body>
<header><strong>AliExpress</strong> sandbox supplier · ${who} · <a href="/orders" data-testid="my-orders">My orders</a></header>
<main>
${body}
</main>
</body></html>`;
}

export function loginPage(next: string, error?: string): string {
  const problem = error ? `<p role="alert" data-testid="login-error">${escapeHtml(error)}</p>` : '';
  return layout(
    'Sign in',
    `<h1>Sign in</h1>${problem}
<form method="post" action="/login" data-testid="login-form">
  <input type="hidden" name="next" value="${escapeHtml(next)}">
  <label>Email <input type="email" name="email" data-testid="login-email" required></label>
  <label>Password <input type="password" name="password" data-testid="login-password" required></label>
  <button type="submit" data-testid="login-submit">Sign in</button>
</form>`,
  );
}

export function messagePage(title: string, testId: string, message: string, email?: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p data-testid="${escapeHtml(testId)}">${escapeHtml(message)}</p>`, email);
}

export function itemPage(product: CatalogProduct, shipTo: string, email: string): string {
  const options = product.skus
    .map((sku) => {
      const price = forCountry(sku.prices, shipTo);
      const stock = Math.max(0, forCountry(sku.stock, shipTo));
      return `<option value="${escapeHtml(sku.skuAttr)}" data-sku-id="${escapeHtml(sku.skuId)}" data-price="${escapeHtml(price)}"
        data-currency="${escapeHtml(sku.currency)}" data-stock="${stock}"${stock === 0 ? ' disabled' : ''}>${escapeHtml(sku.skuAttr)} — ${escapeHtml(sku.currency)} ${escapeHtml(price)} (${stock} available)</option>`;
    })
    .join('\n');
  return layout(
    product.subject,
    `<h1 data-testid="product-title">${escapeHtml(product.subject)}</h1>
<p>Item <span data-testid="product-id">${escapeHtml(product.productId)}</span>, prices for delivery to
  <span data-testid="ship-to">${escapeHtml(shipTo)}</span>
  (<a href="/item/${encodeURIComponent(product.productId)}?ship_to=CL">Chile</a>, <a href="/item/${encodeURIComponent(product.productId)}?ship_to=US">United States</a>)</p>
<form method="post" action="/checkout/start" data-testid="buy-form">
  <input type="hidden" name="product_id" value="${escapeHtml(product.productId)}">
  <input type="hidden" name="ship_to" value="${escapeHtml(shipTo)}">
  <label>Variant <select name="sku_attr" data-testid="sku-select">
${options}
  </select></label>
  <label>Quantity <input type="number" name="quantity" value="1" min="1" step="1" data-testid="quantity"></label>
  <button type="submit" data-testid="buy-now">Buy now</button>
</form>`,
    email,
  );
}

export interface CheckoutView {
  id: string;
  product: CatalogProduct;
  skuAttr: string;
  quantity: number;
  shipTo: string;
}

function countrySelect(selected: string): string {
  const options = countryOptions()
    .map(({ code, name }) => `<option value="${code}"${code === selected ? ' selected' : ''}>${escapeHtml(name)}</option>`)
    .join('');
  return `<select name="country" data-testid="country" required><option value="">Choose…</option>${options}</select>`;
}

const ADDRESS_FIELDS: Array<[name: string, label: string, required: boolean]> = [
  ['full_name', 'Full name', true],
  ['address', 'Street address', true],
  ['address2', 'Apartment, suite (optional)', false],
  ['city', 'City', true],
  ['province', 'State / province', false],
  ['zip', 'ZIP / postal code', true],
  ['phone_country', 'Phone country code', false],
  ['mobile_no', 'Mobile number', false],
  ['cpf', 'CPF / tax number (Brazil)', false],
];

export function checkoutPage(view: CheckoutView, email: string, values: Record<string, string> = {}, error?: { code: string; msg: string }): string {
  const problem = error
    ? `<p role="alert" data-testid="checkout-error" data-error-code="${escapeHtml(error.code)}">${escapeHtml(error.msg)}</p>`
    : '';
  const fields = ADDRESS_FIELDS.map(
    ([name, label, required]) =>
      `<label>${escapeHtml(label)} <input name="${name}" data-testid="${name.replace(/_/g, '-')}" value="${escapeHtml(values[name])}"${required ? ' required' : ''}></label>`,
  ).join('\n  ');
  return layout(
    'Checkout',
    `<h1>Checkout</h1>${problem}
${summary(view)}
<form method="post" action="/checkout/${escapeHtml(view.id)}/place" data-testid="address-form">
  ${fields}
  <label>Country ${countrySelect(values.country ?? view.shipTo)}</label>
  <label>Note to seller <input name="order_memo" data-testid="order-memo" value="${escapeHtml(values.order_memo)}" maxlength="512"></label>
  <button type="submit" data-testid="place-order">Place order</button>
</form>`,
    email,
  );
}

function summary(view: CheckoutView): string {
  return `<p data-testid="checkout-summary">${escapeHtml(view.product.subject)} · <span data-testid="checkout-sku">${escapeHtml(view.skuAttr)}</span>
  × <span data-testid="checkout-quantity">${view.quantity}</span> (final price and shipping depend on the destination)</p>`;
}

export function captchaPage(view: CheckoutView, email: string): string {
  return layout(
    'Security check',
    `<h1>Security check</h1>${summary(view)}
<div data-testid="captcha">
  <p>Slide to verify you are not a robot.</p>
  <form method="post" action="/checkout/${escapeHtml(view.id)}/place">
    <input name="captcha_answer" data-testid="captcha-answer">
    <button type="submit" data-testid="captcha-submit">Verify</button>
  </form>
</div>`,
    email,
  );
}

export function donePage(checkoutId: string, order: SupplierOrder, duplicate: boolean, email: string): string {
  const notice = duplicate
    ? '<p data-testid="duplicate-notice">You already placed an order with this note; here it is again. No new order was created.</p>'
    : '';
  return layout(
    'Order placed',
    `<h1>Thank you, your order was placed</h1>${notice}
<p>Order number: <span data-testid="order-number">${escapeHtml(order.orderId)}</span></p>
<p>Total charged: <span data-testid="order-total" data-amount="${escapeHtml(order.amount.amount)}" data-currency="${escapeHtml(order.amount.currency)}">${escapeHtml(order.amount.currency)} ${escapeHtml(order.amount.amount)}</span></p>
<p>Status: <span data-testid="order-status">${escapeHtml(order.status)}</span></p>
<p data-testid="checkout-id" hidden>${escapeHtml(checkoutId)}</p>`,
    email,
  );
}

export function declinedPage(checkoutId: string, email: string): string {
  return layout(
    'Payment failed',
    `<h1>Payment failed</h1>
<p role="alert" data-testid="payment-error">Your payment was declined. No order was placed.</p>
<p><a href="/checkout/${escapeHtml(checkoutId)}" data-testid="retry-checkout">Try again</a></p>`,
    email,
  );
}

export function ordersPage(orders: SupplierOrder[], email: string, memo: string): string {
  const rows = orders
    .map(
      (o) => `<tr data-testid="order-row" data-order-id="${escapeHtml(o.orderId)}" data-memo="${escapeHtml(o.memo ?? o.items[0]?.memo ?? '')}" data-status="${escapeHtml(o.status)}">
  <td data-testid="order-row-number">${escapeHtml(o.orderId)}</td><td>${escapeHtml(o.status)}</td>
  <td>${escapeHtml(o.amount.currency)} ${escapeHtml(o.amount.amount)}</td><td>${escapeHtml(o.memo ?? '')}</td>
  <td>${o.shipment ? escapeHtml(`${o.shipment.carrier} ${o.shipment.trackingNumber}`) : ''}</td></tr>`,
    )
    .join('\n');
  return layout(
    'My orders',
    `<h1>My orders</h1>
<form method="get" action="/orders"><label>Note contains <input name="memo" data-testid="orders-memo-filter" value="${escapeHtml(memo)}"></label>
<button type="submit" data-testid="orders-search">Search</button></form>
<table data-testid="orders-table"><thead><tr><th>Order</th><th>Status</th><th>Total</th><th>Note</th><th>Tracking</th></tr></thead>
<tbody>
${rows}
</tbody></table>`,
    email,
  );
}
