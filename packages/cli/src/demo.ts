/**
 * `npm run demo` (with `npm start` running): customers buy from the demo seller on eBay, MercadoLibre and the PayPal
 * storefront in the sandbox; this shows each order's journey stage by stage, live, until everyone is paid, then the
 * exact money breakdown.
 */
import type { Marketplace } from '@postsale/contracts';
import { formatDecimal } from '@postsale/contracts';
import { orderIdFor } from '@postsale/contracts';
import { adminClient } from './admin-client';
import { loadOperatorConfig, readEnvFile, STACK_DIR } from './operator-config';
import { join } from 'node:path';

interface Money { amountMinor: number; currency: string }
const show = (m: Money) => `${formatDecimal(m)} ${m.currency}`;
const MARKETPLACES: Array<{ demo: 'ebay' | 'mercadolibre' | 'paypal'; contract: Marketplace; label: string }> = [
  { demo: 'ebay', contract: 'EBAY', label: 'eBay' },
  { demo: 'mercadolibre', contract: 'MERCADOLIBRE', label: 'MercadoLibre' },
  { demo: 'paypal', contract: 'PAYPAL_STOREFRONT', label: 'PayPal storefront' },
];

async function main(): Promise<void> {
  const config = loadOperatorConfig();
  const control = readEnvFile(join(STACK_DIR, 'operator.env')).SANDBOX_CONTROL_URL;
  if (!control || !config.POSTSALE_ADMIN_TOKEN) throw new Error('the stack is not running: start it with `npm start` (or `npm run up`) first');
  const api = {
    ingest: adminClient(config.INGEST_URL, config.POSTSALE_ADMIN_TOKEN),
    fulfillment: adminClient(config.FULFILLMENT_URL, config.POSTSALE_ADMIN_TOKEN),
    sales: adminClient(config.SALES_URL, config.POSTSALE_ADMIN_TOKEN),
    payouts: adminClient(config.PAYOUTS_URL, config.POSTSALE_ADMIN_TOKEN),
  };

  const orders = [];
  for (const m of MARKETPLACES) {
    const response = await fetch(`${control}/demo/orders/${m.demo}`, { method: 'POST' });
    const sent = (await response.json()) as { externalOrderId: string; statuses: number[] };
    const orderId = orderIdFor(m.contract, sent.externalOrderId);
    console.log(`→ a customer paid on ${m.label} (order ${sent.externalOrderId}); ingest answered ${sent.statuses.join(', ')}; our id ${orderId}`);
    orders.push({ ...m, orderId, stage: '', done: false, started: Date.now() });
  }
  console.log('');

  const deadline = Date.now() + 3 * 60_000;
  while (orders.some((o) => !o.done) && Date.now() < deadline) {
    for (const o of orders.filter((x) => !x.done)) {
      const stage = await currentStage(api, o.orderId);
      if (stage.text !== o.stage) {
        o.stage = stage.text;
        console.log(`[${((Date.now() - o.started) / 1000).toFixed(1).padStart(5)} s] ${o.label.padEnd(17)} ${stage.text}`);
      }
      o.done = stage.done;
    }
    await new Promise((r) => setTimeout(r, 300));
  }

  console.log('\nThe money, exactly:');
  for (const o of orders) {
    const sale = await api.sales.get(`/admin/sales/${o.orderId}`);
    if (sale.status !== 200) {
      console.log(`  ${o.label}: no sale recorded yet (${o.stage})`);
      continue;
    }
    const b = sale.data.breakdown as {
      saleAmount: Money; marketplaceFee: Money; paymentFee: Money; supplierCost: Money; supplierCostCharged: Money; grossProfit: Money;
      platformCommission: Money; sellerNetProfit: Money; commissionRateBps: number;
    };
    console.log(`  ${o.label} (${o.orderId})`);
    console.log(`    sale ${show(b.saleAmount)} = marketplace fee ${show(b.marketplaceFee)} + payment fee ${show(b.paymentFee)} + supplier ${show(b.supplierCost)}${sale.data.fx ? ` (charged ${show(b.supplierCostCharged)} at ${sale.data.fx.rate} ${sale.data.fx.toCurrency}/${sale.data.fx.fromCurrency})` : ''}`);
    console.log(`         + platform commission ${show(b.platformCommission)} (${b.commissionRateBps / 100} % of gross profit ${show(b.grossProfit)}) + seller net ${show(b.sellerNetProfit)}`);
  }
  if (orders.some((o) => !o.done)) {
    console.log('\nSome orders have not finished in 3 minutes; `npm run postsale -- integrity` shows where they are.');
    process.exitCode = 1;
  }
}

async function currentStage(api: Record<'ingest' | 'fulfillment' | 'sales' | 'payouts', ReturnType<typeof adminClient>>, orderId: string): Promise<{ text: string; done: boolean }> {
  const payouts = await api.payouts.get(`/admin/orders/${orderId}/payouts`);
  const intents = (payouts.status === 200 ? payouts.data.payouts : []) as Array<{ recipient: string; status: string; amount: Money }>;
  if (intents.length > 0) {
    const text = `payouts: ${intents.map((i) => `${i.recipient.toLowerCase()} ${show(i.amount)} ${i.status}`).join(', ')}`;
    return { text, done: intents.every((i) => ['SENT', 'SKIPPED'].includes(i.status)) };
  }
  const sale = await api.sales.get(`/admin/sales/${orderId}`);
  if (sale.status === 200) return { text: `sales: sale recorded, net profit ${show(sale.data.breakdown.sellerNetProfit)}`, done: false };
  const fulfillment = await api.fulfillment.get(`/admin/orders/${orderId}`);
  if (fulfillment.status === 200) {
    const f = fulfillment.data as { state: string; supplierOrderId: string | null; reason: { code: string } | null };
    return {
      text: `fulfillment: ${f.state}${f.supplierOrderId ? ` (AliExpress order ${f.supplierOrderId})` : ''}${f.reason ? ` — ${f.reason.code}` : ''}`,
      done: ['NEEDS_REVIEW', 'CANCELLED'].includes(f.state),
    };
  }
  const ingest = await api.ingest.get(`/admin/orders/${orderId}`);
  return { text: ingest.status === 200 ? 'ingest: order received and published' : 'ingest: waiting for the order', done: false };
}

main().catch((error: unknown) => {
  console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
