import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAliExpressFake, type AliExpressFake, type AliExpressSellerCredentials } from '@postsale/sandbox';
import { AliExpressDsClient, SupplierCallError } from '../../src/clients/aliexpress-ds.client';

/**
 * The Dropshipping client against the AliExpress fake, on the shapes external-apis.md "Corrections" lists: the token
 * sent as `session` (official SDKs), errors answered flat `{type, code, message, request_id}` (the /rest endpoints) or
 * as the gateway's `error_response`, and order.create's business codes (CPF checks, A001…A006).
 */
describe('AliExpress Dropshipping client on the real answer shapes', () => {
  let fake: AliExpressFake;
  let seller: AliExpressSellerCredentials;
  const PRODUCT = { productId: '1005009', subject: 'Cable', skus: [{ skuId: '12000009', skuAttr: '14:193#Black', prices: { default: '2.00' }, stock: 10 }] };
  const clientFor = (gatewayUrl: string) => new AliExpressDsClient({ gatewayUrl, credentials: seller, timeoutMs: 5_000 });
  const caught = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a SupplierCallError'); }, (e: unknown) => e as SupplierCallError);

  beforeAll(async () => {
    fake = await startAliExpressFake();
    seller = fake.registerSeller({ account: 'client-shapes' });
    fake.seedProduct(PRODUCT);
  });
  afterAll(() => fake.stop());
  afterEach(() => fake.clearFailures());

  it('sends the token as `session` (not access_token), and the fake accepts it', async () => {
    const seen: URLSearchParams[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        seen.push(new URLSearchParams(body));
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ aliexpress_trade_ds_order_get_response: { result: { order_status: 'FINISH' }, request_id: 'r1' } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sync`).getOrder('3000000000000001');
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(seen[0]!.get('session')).toBe(seller.accessToken);
    expect(seen[0]!.has('access_token')).toBe(false);
    const product = await clientFor(fake.gatewayUrl).getProduct(PRODUCT.productId, 'US');
    expect(product.skus.map((s) => s.skuId)).toEqual(['12000009']);
  });

  it('a flat error {type, code, message, request_id} is an error with its code: a business code is permanent, a SYSTEM one unknown', async () => {
    fake.failMethod('aliexpress.ds.product.get', { kind: 'flat-error', code: 'InvalidParameter', message: 'product_id is invalid', type: 'ISV' }, 1);
    const isv = await caught(clientFor(fake.gatewayUrl).getProduct(PRODUCT.productId, 'US'));
    expect(isv).toMatchObject({ name: 'SupplierCallError', kind: 'PERMANENT', code: 'InvalidParameter', message: 'product_id is invalid' });
    fake.failMethod('aliexpress.trade.ds.order.get', { kind: 'flat-error', code: 'InternalError', type: 'SYSTEM' }, 1);
    expect(await caught(clientFor(fake.gatewayUrl).getOrder('3000000000000001'))).toMatchObject({ kind: 'UNKNOWN', code: 'InternalError' });
    fake.failMethod('aliexpress.ds.order.create', { kind: 'flat-error', code: 'A001', message: 'Order placement failed', type: 'ISP' }, 1);
    const create = clientFor(fake.gatewayUrl).createOrder({ outOrderId: 'po-flat', address: {}, items: [{ productId: PRODUCT.productId, quantity: 1, skuAttr: '14:193#Black' }] });
    expect(await caught(create)).toMatchObject({ kind: 'PERMANENT', code: 'A001' });
    expect(fake.orders()).toHaveLength(0);
  });

  it.each(['A003', 'A006', 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH'])('the gateway error_response %s (even typed ISP) is a permanent business refusal with that code, never UNKNOWN', async (code) => {
    fake.failMethod('aliexpress.ds.order.create', { kind: 'gateway-error', code, msg: 'refused', type: 'ISP' }, 1);
    const create = clientFor(fake.gatewayUrl).createOrder({ outOrderId: `po-${code}`, address: {}, items: [{ productId: PRODUCT.productId, quantity: 1, skuAttr: '14:193#Black' }] });
    expect(await caught(create)).toMatchObject({ kind: 'PERMANENT', code });
  });

  it('a CPF refusal as is_success:false comes back as a refusal with the supplier code', async () => {
    fake.failMethod('aliexpress.ds.order.create', { kind: 'business-error', errorCode: 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH', errorMsg: 'CPF does not match the receiver' }, 1);
    const result = await clientFor(fake.gatewayUrl).createOrder({ outOrderId: 'po-cpf', address: {}, items: [{ productId: PRODUCT.productId, quantity: 1, skuAttr: '14:193#Black' }] });
    expect(result).toMatchObject({ ok: false, errorCode: 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH', errorMsg: 'CPF does not match the receiver' });
  });
});
