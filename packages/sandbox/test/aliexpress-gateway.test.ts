import { createHmac } from 'node:crypto';
import {
  aliExpressStringToSign,
  callAliExpress,
  signAliExpressRequest,
  startAliExpressFake,
  withAliExpressSignature,
  type AliExpressFake,
  type AliExpressSellerCredentials as SellerCredentials,
} from '../src/aliexpress';

/** The gateway's own rules: the signature, tenant isolation of tokens, system-parameter checks and the daily quota. */
const PRODUCT = {
  productId: '1005001',
  subject: 'Phone case',
  skus: [{ skuId: '12000001', skuAttr: '14:193#Black', prices: { default: '3.50' }, stock: 10 }],
};

describe('AliExpress gateway', () => {
  let fake: AliExpressFake;
  let seller: SellerCredentials;
  const call = (creds: SellerCredentials, method: string, params: Record<string, string> = {}) =>
    callAliExpress({ gatewayUrl: fake.gatewayUrl, ...creds }, method, params);

  beforeEach(async () => {
    fake = await startAliExpressFake({ dailyQuota: 5 });
    seller = fake.registerSeller({ account: 'seller-a' });
    fake.seedProduct(PRODUCT);
  });
  afterEach(() => fake.stop());

  it('signs exactly as documented: sorted k1v1k2v2…, HMAC-SHA256, uppercase hex', () => {
    const params = { timestamp: '1700000000000', app_key: '12345', method: 'aliexpress.ds.product.get', sign_method: 'sha256', product_id: '1', access_token: 'tok', sign: 'ignored' };
    const expectedString = 'access_tokentokapp_key12345methodaliexpress.ds.product.getproduct_id1sign_methodsha256timestamp1700000000000';
    expect(aliExpressStringToSign(params)).toBe(expectedString);
    expect(signAliExpressRequest(params, 's3cret')).toBe(createHmac('sha256', 's3cret').update(expectedString).digest('hex').toUpperCase());
    // ASCII order: upper case before '_' before lower case
    expect(aliExpressStringToSign({ b: '1', B: '2', _a: '3' })).toBe('B2_a3b1');
    // system APIs prefix their path
    expect(aliExpressStringToSign({ code: 'x' }, '/auth/token/create')).toBe('/auth/token/createcodex');
  });

  it('a request signed with the wrong secret is rejected with IncompleteSignature', async () => {
    const answer = await call({ ...seller, appSecret: 'not-the-secret' }, 'aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'US' });
    expect(answer).toEqual({
      error_response: expect.objectContaining({
        type: 'ISV',
        code: 'IncompleteSignature',
        msg: 'The request signature does not conform to platform standards',
        request_id: expect.any(String),
      }),
    });
    // the same call with the right secret succeeds, over GET as well as POST
    const ok = await callAliExpress({ gatewayUrl: fake.gatewayUrl, ...seller, httpMethod: 'GET' }, 'aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'US' });
    expect(ok).toHaveProperty('aliexpress_ds_product_get_response.result.ae_item_base_info_dto.subject', 'Phone case');
  });

  it('a parameter changed after signing breaks the signature', async () => {
    const params = withAliExpressSignature(
      { method: 'aliexpress.ds.product.get', app_key: seller.appKey, access_token: seller.accessToken, timestamp: String(Date.now()), sign_method: 'sha256', product_id: PRODUCT.productId, ship_to_country: 'US' },
      seller.appSecret,
    );
    const tampered = new URLSearchParams({ ...params, ship_to_country: 'CL' });
    const answer = (await (await fetch(fake.gatewayUrl, { method: 'POST', body: tampered })).json()) as Record<string, unknown>;
    expect(answer).toHaveProperty('error_response.code', 'IncompleteSignature');
  });

  it("a token of one seller cannot be used with another seller's app key", async () => {
    const other = fake.registerSeller({ account: 'seller-b' });
    // correctly signed with B's own app and secret, but carrying A's token
    const answer = await call({ ...other, accessToken: seller.accessToken }, 'aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'US' });
    expect(answer).toHaveProperty('error_response.code', 'IllegalAccessToken');
    // and each seller's own pair works
    expect(await call(other, 'aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'US' })).toHaveProperty('aliexpress_ds_product_get_response');
  });

  it('an expired or unknown token is IllegalAccessToken', async () => {
    expect(await call({ ...seller, accessToken: 'nope' }, 'aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'US' })).toHaveProperty('error_response.code', 'IllegalAccessToken');
    fake.expireAccessToken(seller.accessToken);
    expect(await call(seller, 'aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'US' })).toHaveProperty('error_response.code', 'IllegalAccessToken');
  });

  it('missing system or business parameters are MissingParameter; unknown app keys and methods are refused', async () => {
    const noProduct = await call(seller, 'aliexpress.ds.product.get', { ship_to_country: 'US' });
    expect(noProduct).toHaveProperty('error_response.code', 'MissingParameter');
    expect(JSON.stringify(noProduct)).toContain('product_id');
    const unsigned = (await (await fetch(`${fake.gatewayUrl}?method=aliexpress.ds.product.get&app_key=${seller.appKey}`)).json()) as Record<string, unknown>;
    expect(unsigned).toHaveProperty('error_response.code', 'MissingParameter');
    expect(await call({ ...seller, appKey: '999' }, 'aliexpress.ds.product.get', {})).toHaveProperty('error_response.code', 'InvalidAppKey');
    expect(await call(seller, 'aliexpress.ds.order.query.by.out.order.id', {})).toHaveProperty('error_response.code', 'InvalidApiPath');
  });

  it('the per-app daily quota answers ApiCallLimit once used up, for that app only', async () => {
    const other = fake.registerSeller({ account: 'seller-b' });
    const get = (c: SellerCredentials) => call(c, 'aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'US' });
    for (let i = 0; i < 5; i += 1) expect(await get(seller)).toHaveProperty('aliexpress_ds_product_get_response');
    const limited = await get(seller);
    expect(limited).toHaveProperty('error_response.code', 'ApiCallLimit');
    expect(limited).toHaveProperty('error_response.msg', 'App call limit exceeded');
    expect(limited).toHaveProperty('error_response.sub_code', expect.stringMatching(/^isp\./));
    expect(await get(other)).toHaveProperty('aliexpress_ds_product_get_response');
    expect(fake.callCount('aliexpress.ds.product.get')).toBe(7);
  });

  it("the token is accepted as `session` (what the official IOP SDKs send) as well as `access_token`; an unknown one is still refused", async () => {
    const params = { product_id: PRODUCT.productId, ship_to_country: 'US' };
    const bySession = await callAliExpress({ gatewayUrl: fake.gatewayUrl, ...seller, tokenParam: 'session' }, 'aliexpress.ds.product.get', params);
    expect(bySession).toHaveProperty('aliexpress_ds_product_get_response.result.ae_item_base_info_dto.subject', 'Phone case');
    const wrong = await callAliExpress({ gatewayUrl: fake.gatewayUrl, ...seller, accessToken: 'not-a-token', tokenParam: 'session' }, 'aliexpress.ds.product.get', params);
    expect(wrong).toHaveProperty('error_response.code', 'IllegalAccessToken');
  });

  it('failMethod answers errors flat ({type, code, message, request_id}, the /rest shape) or as order.create business codes, without side effects', async () => {
    fake.failMethod('aliexpress.ds.order.create', { kind: 'flat-error', code: 'A001', message: 'Order placement failed', type: 'ISP' }, 1);
    const flat = await call(seller, 'aliexpress.ds.order.create', { param_place_order_request4_open_api_d_t_o: '{}' });
    expect(flat).toEqual({ type: 'ISP', code: 'A001', message: 'Order placement failed', request_id: expect.any(String) });
    fake.failMethod('aliexpress.ds.order.create', { kind: 'business-error', errorCode: 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH' }, 1);
    const business = await call(seller, 'aliexpress.ds.order.create', { param_place_order_request4_open_api_d_t_o: '{}' });
    expect(business).toHaveProperty('aliexpress_ds_order_create_response.result', { is_success: false, error_code: 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH', error_msg: 'B_DROPSHIPPER_DELIVERY_ADDRESS_CPF_NOT_MATCH' });
    expect(fake.orders()).toHaveLength(0);
  });
});
