import {
  callAliExpress,
  aliExpressOrderCreateParams as orderCreateParams,
  startAliExpressFake,
  type AliExpressFake,
  type AliExpressFakeOptions,
  type AliExpressOrderCreateInput as OrderCreateInput,
  type AliExpressSellerCredentials as SellerCredentials,
} from '../src/aliexpress';

/** The Dropshipping order API: idempotent creation, validation, payment states, per-country prices, tracking. */
const CREATE = 'aliexpress.ds.order.create';
const ADDRESS = {
  full_name: 'Ana Pérez', contact_person: 'Ana Pérez', address: 'Av. Providencia 1234', address2: 'Depto 5',
  city: 'Santiago', province: 'Region Metropolitana', zip: '7500000', country: 'CL', mobile_no: '912345678', phone_country: '+56',
};
const PRODUCT = {
  productId: '1005006000001',
  subject: 'Wireless earbuds',
  skus: [
    { skuId: '12000036000001', skuAttr: '14:193#Black', prices: { US: '10.00', CL: '11.00', default: '10.50' }, stock: { default: 5, CL: 3 }, shippingCost: { US: '0.00', default: '2.00' } },
    { skuId: '12000036000002', skuAttr: '14:200#White', prices: { default: '9.00' }, stock: 0 },
  ],
};

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('AliExpress Dropshipping orders', () => {
  let fake: AliExpressFake;
  let seller: SellerCredentials;
  let clock: number;

  async function start(options: AliExpressFakeOptions = {}) {
    clock = Date.parse('2026-03-01T12:00:00Z');
    fake = await startAliExpressFake({ now: () => clock, ...options });
    seller = fake.registerSeller({ account: 'seller-a' });
    fake.seedProduct(PRODUCT);
  }
  afterEach(() => fake?.stop());

  const call = (method: string, params: Record<string, string> = {}, creds = seller): Promise<Json> =>
    callAliExpress({ gatewayUrl: fake.gatewayUrl, ...creds, timestamp: clock }, method, params);
  const order = (input: Partial<OrderCreateInput> = {}) =>
    orderCreateParams({ outOrderId: 'po-1', address: ADDRESS, items: [{ productId: PRODUCT.productId, quantity: 1, skuAttr: '14:193#Black', logisticsServiceName: 'CAINIAO_STANDARD' }], ...input });
  const create = async (input: Partial<OrderCreateInput> = {}, creds = seller) =>
    ((await call(CREATE, order(input), creds)).aliexpress_ds_order_create_response as Json).result as Json;
  const createdId = (result: Json) => String(result.order_list.number[0]);
  const getOrder = async (id: string) => call('aliexpress.trade.ds.order.get', { single_order_query: JSON.stringify({ order_id: id }) });

  it('the same out_order_id twice creates one supplier order; the repeat is REPEATED_ORDER_ERROR with no order id (real default)', async () => {
    await start();
    const first = await create();
    const second = await create();
    expect(first).toEqual({ is_success: true, order_list: { number: [expect.any(Number)] } });
    expect(createdId(first)).toMatch(/^\d{16}$/);
    // Corrections: exactly this, and nothing naming the existing order
    expect(second).toEqual({ is_success: false, error_code: 'REPEATED_ORDER_ERROR', error_msg: 'Repeated placed order – request already been handled successfully' });
    expect(fake.orders()).toHaveLength(1);
    expect(fake.ordersByOutOrderId('po-1')).toEqual([expect.objectContaining({ orderId: createdId(first), account: 'seller-a', outOrderId: 'po-1' })]);
    expect(fake.stockOf(PRODUCT.productId, '12000036000001', 'CL')).toBe(2); // taken once
    expect(fake.callCount(CREATE)).toBe(2);
    // a different key is a different order
    expect(createdId(await create({ outOrderId: 'po-2' }))).not.toBe(createdId(first));
  });

  it('an out_order_id is scoped to its seller and expires after 24 h', async () => {
    await start();
    const other = fake.registerSeller({ account: 'seller-b' });
    const mine = createdId(await create());
    const theirs = createdId(await create({}, other));
    expect(theirs).not.toBe(mine);
    clock += 24 * 3600_000;
    expect(createdId(await create())).not.toBe(mine);
    expect(fake.ordersByOutOrderId('po-1')).toHaveLength(3);
  });

  it("can answer a repeated out_order_id with the existing order (the old, unreal assumption) when asked", async () => {
    await start({ duplicateOutOrderIdBehaviour: 'return-existing' });
    const first = await create();
    expect(await create()).toEqual(first);
    expect(fake.orders()).toHaveLength(1);
  });

  it('a dropped response after create leaves exactly one order; re-creating says REPEATED_ORDER_ERROR and creates nothing', async () => {
    await start();
    fake.fail({ match: /^POST \/sync$/, mode: { kind: 'drop-after-handling' }, times: 1 });
    await expect(call(CREATE, order())).rejects.toThrow();
    expect(fake.orders()).toHaveLength(1);
    expect(await create()).toMatchObject({ is_success: false, error_code: 'REPEATED_ORDER_ERROR' });
    expect(fake.orders()).toHaveLength(1);
  });

  it('FINISH covers closed orders: a closed order carries its close end_reason, a delivered one buyer_accept_goods', async () => {
    await start();
    const closed = createdId(await create({ outOrderId: 'po-closed' }));
    fake.closeOrder(closed, 'seller_send_goods_timeout');
    clock += 20_000;
    const result = ((await getOrder(closed)).aliexpress_trade_ds_order_get_response as Json).result as Json;
    expect(result.order_status).toBe('FINISH');
    expect(result.child_order_list.aeop_child_order_info.map((c: Json) => c.end_reason)).toEqual(['seller_send_goods_timeout']);
    // closed before it shipped: no logistics, and tracking stays empty (not an error)
    expect(result.logistics_status).toBe('NO_LOGISTICS');
    const tracking = ((await call('aliexpress.ds.order.tracking.get', { ae_order_id: closed, language: 'en_US' })).aliexpress_ds_order_tracking_get_response as Json).result as Json;
    expect(tracking).toMatchObject({ ret: true, data: { tracking_detail_line_list: { tracking_detail: [] } } });
  });

  it('a dropped response after create (old assumption mode) is resolved by re-creating with the same out_order_id', async () => {
    await start({ duplicateOutOrderIdBehaviour: 'return-existing' });
    fake.fail({ match: /^POST \/sync$/, mode: { kind: 'drop-after-handling' }, times: 1 });
    await expect(call(CREATE, order())).rejects.toThrow(); // the connection is cut: the client cannot know the outcome
    expect(fake.orders()).toHaveLength(1); // ...but the order exists
    const resolved = await create();
    expect(createdId(resolved)).toBe(fake.orders()[0]?.orderId);
    expect(fake.orders()).toHaveLength(1);
  });

  it('failMethod aims at one API method on the shared /sync route', async () => {
    await start();
    fake.failMethod(CREATE, { kind: 'drop-after-handling' }, 1);
    // other methods are untouched by the rule
    expect(await call('aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: 'CL' })).toHaveProperty('aliexpress_ds_product_get_response');
    await expect(call(CREATE, order())).rejects.toThrow();
    expect(fake.orders()).toHaveLength(1);
    fake.failMethod(CREATE, { kind: 'business-error', errorCode: 'ERROR_WHEN_BUILD_FOR_PLACE_ORDER' }, 1);
    expect(await create({ outOrderId: 'po-9' })).toEqual({ is_success: false, error_code: 'ERROR_WHEN_BUILD_FOR_PLACE_ORDER', error_msg: expect.any(String) });
    fake.failMethod(CREATE, { kind: 'gateway-error', code: 'ServiceUnavailable', type: 'ISP' }, 1);
    expect(await call(CREATE, order({ outOrderId: 'po-9' }))).toHaveProperty('error_response.code', 'ServiceUnavailable');
    expect(fake.orders()).toHaveLength(1); // injected refusals have no side effects
    expect(await create()).toMatchObject({ is_success: false, error_code: 'REPEATED_ORDER_ERROR' }); // the dropped one was placed
    // hang: the client's own timeout fires and nothing was handled; latency: answered late but answered
    fake.failMethod(CREATE, { kind: 'hang' }, 1);
    await expect(callAliExpress({ gatewayUrl: fake.gatewayUrl, ...seller, signal: AbortSignal.timeout(200) }, CREATE, order({ outOrderId: 'po-10' }))).rejects.toThrow();
    expect(fake.ordersByOutOrderId('po-10')).toHaveLength(0);
    fake.failMethod(CREATE, { kind: 'latency', ms: 50 }, 1);
    expect(await create({ outOrderId: 'po-10' })).toMatchObject({ is_success: true });
  });

  it('an order awaiting payment reports PLACE_ORDER_SUCCESS until settled', async () => {
    await start();
    const id = createdId(await create({ tryToPay: false }));
    const status = async () => ((await getOrder(id)).aliexpress_trade_ds_order_get_response as Json).result as Json;
    expect(await status()).toMatchObject({ order_status: 'PLACE_ORDER_SUCCESS', logistics_status: 'NO_LOGISTICS', order_amount: { amount: '13.00', currency_code: 'USD' } }); // 11.00 for CL + 2.00 freight
    clock += 3600_000;
    expect((await status()).order_status).toBe('PLACE_ORDER_SUCCESS'); // time alone does not pay it
    fake.settlePayment(id);
    const paid = await status();
    expect(paid.order_status).toBe('WAIT_SELLER_SEND_GOODS');
    expect(paid.order_paidtime_string).toEqual(expect.any(String));
    expect(paid.child_order_list.aeop_child_order_info).toEqual([expect.objectContaining({ product_count: 1, sku_attr: '14:193#Black', product_price: { amount: '11.00', currency_code: 'USD' } })]);
  });

  it('try_to_pay goes through PAYMENT_PROCESSING and settles after paymentSettleAfterMs; outcomes can be stay-unpaid or risk-control', async () => {
    await start({ paymentSettleAfterMs: 60_000 });
    const paying = createdId(await create({ tryToPay: true }));
    expect(fake.order(paying)?.status).toBe('PAYMENT_PROCESSING');
    clock += 60_000;
    expect(fake.order(paying)?.status).toBe('WAIT_SELLER_SEND_GOODS');
    fake.setPaymentOutcome('stay-unpaid');
    expect(fake.order(createdId(await create({ tryToPay: true, outOrderId: 'po-2' })))?.status).toBe('PLACE_ORDER_SUCCESS');
    fake.setPaymentOutcome('risk-control');
    const risky = createdId(await create({ tryToPay: true, outOrderId: 'po-3' }));
    clock += 60_000;
    expect(fake.order(risky)?.status).toBe('RISK_CONTROL');
  });

  it('order.get fails during orderQueryLagMs after creation, then answers', async () => {
    await start({ orderQueryLagMs: 10_000 });
    const id = createdId(await create());
    expect(await getOrder(id)).toHaveProperty('error_response.code', 'ORDER_NOT_FOUND');
    clock += 10_000;
    expect(await getOrder(id)).toHaveProperty('aliexpress_trade_ds_order_get_response.result.order_status', 'PLACE_ORDER_SUCCESS');
    // another seller never sees it
    const other = fake.registerSeller({ account: 'seller-b' });
    expect(await call('aliexpress.trade.ds.order.get', { single_order_query: JSON.stringify({ order_id: id }) }, other)).toHaveProperty('error_response.code', 'ORDER_NOT_FOUND');
  });

  it('an invalid address is refused with B_DROPSHIPPER_DELIVERY_ADDRESS_VALIDATE_FAIL', async () => {
    await start();
    const refused = (result: Json) => expect(result).toEqual({ is_success: false, error_code: 'B_DROPSHIPPER_DELIVERY_ADDRESS_VALIDATE_FAIL', error_msg: expect.any(String) });
    const { city: _city, ...noCity } = ADDRESS;
    refused(await create({ address: noCity }));
    refused(await create({ address: { ...ADDRESS, province: '' } })); // Corrections: province is required...
    refused(await create({ address: { ...ADDRESS, country: 'Chile' } }));
    refused(await create({ address: { ...ADDRESS, country: 'UK' } }));
    refused(await create({ address: { ...ADDRESS, country: 'BR' } })); // Brazil needs a CPF
    expect(fake.orders()).toHaveLength(0);
    expect(fake.stockOf(PRODUCT.productId, '12000036000001', 'CL')).toBe(3);
    // a refused create does not burn the out_order_id: the corrected request goes through with the same key
    expect(await create()).toMatchObject({ is_success: true });
    // ...and zip is optional
    expect(await create({ outOrderId: 'po-nozip', address: { ...ADDRESS, zip: '' } })).toMatchObject({ is_success: true });
  });

  it('refuses out-of-stock, unknown SKUs, wrong pay currency, blacklisted buyers, disabled accounts and delisted products', async () => {
    await start();
    const code = async (input: Partial<OrderCreateInput>) => (await create(input)).error_code;
    const line = (quantity: number, skuAttr = '14:193#Black') => [{ productId: PRODUCT.productId, quantity, skuAttr }];
    expect(await code({ items: line(4) })).toBe('INVENTORY_HOLD_ERROR'); // 3 left for CL
    expect(await code({ items: line(1, '14:200#White') })).toBe('INVENTORY_HOLD_ERROR');
    expect(await code({ items: line(1, '14:999#Pink') })).toBe('ERROR_WHEN_BUILD_FOR_PLACE_ORDER');
    expect(await code({ items: [{ productId: PRODUCT.productId, quantity: 1, skuAttr: '14:193#Black', logisticsServiceName: 'DHL' }] })).toBe('DELIVERY_METHOD_NOT_EXIST');
    expect(await code({ payCurrency: 'EUR' })).toBe('PRICE_PAY_CURRENCY_ERROR');
    fake.blacklistBuyer('ana  PÉREZ');
    expect(await code({})).toBe('BLACKLIST_BUYER_IN_LIST');
    fake.disableAccount('seller-a');
    expect(await code({ address: { ...ADDRESS, full_name: 'Bob', contact_person: 'Bob' } })).toBe('USER_ACCOUNT_DISABLED');
    fake.enableAccount('seller-a');
    fake.delistProduct(PRODUCT.productId);
    expect(await code({ address: { ...ADDRESS, full_name: 'Bob', contact_person: 'Bob' } })).toBe('ERROR_WHEN_BUILD_FOR_PLACE_ORDER');
    expect(fake.orders()).toHaveLength(0);
    expect(fake.stockOf(PRODUCT.productId, '12000036000001', 'CL')).toBe(3);
  });

  it('price differs per ship-to country', async () => {
    await start();
    const product = async (country: string) =>
      ((await call('aliexpress.ds.product.get', { product_id: PRODUCT.productId, ship_to_country: country, target_currency: 'USD', target_language: 'en' })).aliexpress_ds_product_get_response as Json).result as Json;
    const sku = (result: Json) => result.ae_item_sku_info_dtos.ae_item_sku_info_d_t_o[0] as Json;
    const us = await product('US');
    const cl = await product('CL');
    const de = await product('DE');
    expect(us.ae_item_base_info_dto).toMatchObject({ subject: 'Wireless earbuds', product_status_type: 'onSelling' });
    expect(sku(us)).toMatchObject({ sku_id: '12000036000001', sku_attr: '14:193#Black', offer_sale_price: '10.00', currency_code: 'USD', sku_available_stock: 5 });
    expect(sku(cl)).toMatchObject({ offer_sale_price: '11.00', sku_available_stock: 3 });
    expect(sku(de)).toMatchObject({ offer_sale_price: '10.50', sku_available_stock: 5 });
    expect(cl.logistics_info_dto).toEqual({ ship_to_country: 'CL', delivery_time: 15 });
    // the order is charged the destination's price plus its freight
    fake.setSkuPrice(PRODUCT.productId, '12000036000001', '12.00', 'CL');
    const id = createdId(await create({ items: [{ productId: PRODUCT.productId, quantity: 2, skuAttr: '14:193#Black' }] }));
    expect(fake.order(id)?.amount).toEqual({ amount: '28.00', currency: 'USD' }); // 2 × 12.00 + 2 × 2.00 freight
    const freight = ((await call('aliexpress.ds.freight.query', { queryDeliveryReq: JSON.stringify({ productId: PRODUCT.productId, selectedSkuId: '12000036000001', quantity: 1, shipToCountry: 'US', currency: 'USD' }) })).aliexpress_ds_freight_query_response as Json).result as Json;
    expect(freight.delivery_options.delivery_option_d_t_o[0]).toMatchObject({ code: 'CAINIAO_STANDARD', shipping_fee_cent: '0.00', free_shipping: true });
    // Corrections: a destination no service reaches answers flat {code:505, msg}
    fake.seedProduct({ ...PRODUCT, productId: '1005006000009', undeliverableTo: ['CL'] });
    const none = ((await call('aliexpress.ds.freight.query', { queryDeliveryReq: JSON.stringify({ productId: '1005006000009', selectedSkuId: '12000036000001', quantity: 1, shipToCountry: 'CL' }) })).aliexpress_ds_freight_query_response as Json).result as Json;
    expect(none).toEqual({ code: 505, msg: 'DELIVERY_NOT_AVAILABLE_TO_YOUR_ADDRESS' });
    // delisted: still answers, as offline with no stock; an unknown product is an error
    fake.delistProduct(PRODUCT.productId);
    expect((await product('US')).ae_item_base_info_dto.product_status_type).toBe('offline');
    expect(await call('aliexpress.ds.product.get', { product_id: '42', ship_to_country: 'US' })).toHaveProperty('error_response.code', 'PRODUCT_NOT_EXIST');
  });

  it('tracking appears after shipment', async () => {
    await start();
    const id = createdId(await create({ tryToPay: true }));
    const tracking = async () => ((await call('aliexpress.ds.order.tracking.get', { ae_order_id: id, language: 'en_US' })).aliexpress_ds_order_tracking_get_response as Json).result as Json;
    expect(await tracking()).toEqual({ ret: true, data: { tracking_detail_line_list: { tracking_detail: [] } } });
    fake.shipOrder(id, { carrier: 'Cainiao', trackingNumber: 'LP00123456789CN' });
    const shipped = await tracking();
    expect(shipped.data.tracking_detail_line_list.tracking_detail).toEqual([
      expect.objectContaining({ mail_no: 'LP00123456789CN', carrier_name: 'Cainiao', eta_time_stamps: expect.any(Number), detail_node_list: { detail_node: [expect.objectContaining({ tracking_name: expect.any(String), tracking_detail_desc: expect.any(String), time_stamp: clock })] } }),
    ]);
    expect(await getOrder(id)).toHaveProperty('aliexpress_trade_ds_order_get_response.result.order_status', 'WAIT_BUYER_ACCEPT_GOODS');
    expect(await getOrder(id)).toHaveProperty('aliexpress_trade_ds_order_get_response.result.logistics_info_list.aeop_order_logistics_info', [{ logistics_no: 'LP00123456789CN', logistics_service: 'CAINIAO_STANDARD' }]);
    clock += 86_400_000;
    fake.deliverOrder(id);
    expect(fake.order(id)?.status).toBe('FINISH');
    expect(await getOrder(id)).toHaveProperty('aliexpress_trade_ds_order_get_response.result.child_order_list.aeop_child_order_info.0.end_reason', 'buyer_accept_goods');
    expect((await tracking()).data.tracking_detail_line_list.tracking_detail[0].detail_node_list.detail_node[0].tracking_name).toBe('Delivered');
  });

  it('a cancelled order is IN_CANCEL and its stock returns; an unpaid order cannot ship', async () => {
    await start();
    const id = createdId(await create());
    expect(() => fake.shipOrder(id, { carrier: 'Cainiao', trackingNumber: 'X' })).toThrow(/WAIT_SELLER_SEND_GOODS/);
    fake.cancelOrder(id);
    expect(fake.order(id)?.status).toBe('IN_CANCEL');
    expect(fake.stockOf(PRODUCT.productId, '12000036000001', 'CL')).toBe(3);
  });
});
