import { randomUUID } from 'node:crypto';
import type { FulfillmentEvent, OrderEvent, PayoutEvent, SaleEvent } from '../src';

const usd = (amountMinor: number) => ({ amountMinor, currency: 'USD' });
const envelope = () => ({
  eventId: randomUUID(), orderId: 'ord_1', sellerId: 'seller_1', occurredAt: 1_763_800_000_000, causationId: null,
});

/** One realistic sample per event type, so every branch of every union is exercised. */
export const samples = {
  orders: [
    { ...envelope(), type: 'OrderReceived', payload: {
      marketplace: 'EBAY', externalOrderId: '12-34567-89012', marketplaceAccountId: 'ebay-user',
      lines: [{ lineId: '1000', listingId: '110551', sku: 'SKU-1', title: 'Lamp', quantity: 2, unitPrice: usd(1250) }],
      buyer: { externalId: 'b1', name: 'Ana Perez', email: 'ana@example.com' },
      shipTo: { fullName: 'Ana Perez', line1: 'Av 1', line2: null, city: 'Santiago', region: 'RM', postalCode: '8320000',
        countryCode: 'CL', phone: null },
      shipToIssue: null,
      itemsAmount: usd(2500), shippingAmount: usd(500), saleAmount: usd(3000),
      marketplaceFee: usd(390), paymentFee: null, paymentReference: null, receivedAt: 1_763_800_000_000, sealedPersonal: null,
    } },
    // as ingest publishes it now: the buyer's data sealed under the subject's key, the clear fields null
    { ...envelope(), type: 'OrderReceived', payload: {
      marketplace: 'MERCADOLIBRE', externalOrderId: '2000003508', marketplaceAccountId: '123456',
      lines: [{ lineId: 'MLA1', listingId: 'MLA1', sku: null, title: null, quantity: 1, unitPrice: usd(1000) }],
      buyer: null, shipTo: null, shipToIssue: null,
      itemsAmount: usd(1000), shippingAmount: usd(0), saleAmount: usd(1000),
      marketplaceFee: null, paymentFee: null, paymentReference: '123', receivedAt: 1_763_800_000_000,
      sealedPersonal: { subjectId: '7d0c5d1e-8f4e-4c55-9f83-0f7f3c2a1b11', ciphertext: 'v1:aXY=:dGFn:Ym9keQ==' },
    } },
    { ...envelope(), type: 'OrderCancelled', payload: {
      marketplace: 'MERCADOLIBRE', externalOrderId: '2195160686', reason: 'buyer cancelled', cancelledAt: 1 } },
    { ...envelope(), type: 'OrderRefunded', payload: {
      marketplace: 'PAYPAL_STOREFRONT', externalOrderId: '5O190127TN364715T', refundId: 'R1', amount: usd(1000),
      full: false, reason: null, refundedAt: 2 } },
    { ...envelope(), type: 'OrderPersonalDataErased', payload: {
      marketplace: 'EBAY', externalOrderId: '12-34567-89012', cause: 'EBAY_ACCOUNT_DELETION', erasedAt: 3 } },
  ] satisfies OrderEvent[],
  fulfillment: [
    { ...envelope(), type: 'PurchaseCompleted', payload: {
      supplier: 'ALIEXPRESS', supplierOrderId: '8198352049851315', supplierCost: usd(1100), channel: 'API', purchasedAt: 3 } },
    { ...envelope(), type: 'PurchaseFailed', payload: {
      reasonCode: 'SUPPLIER_REJECTED', supplierErrorCode: 'INVENTORY_HOLD_ERROR', message: 'no stock', needsReview: true,
      failedAt: 4 } },
    { ...envelope(), type: 'OrderShipped', payload: { carrier: 'CAINIAO', trackingNumber: 'LP00123', shippedAt: 5 } },
    { ...envelope(), type: 'OrderDelivered', payload: { deliveredAt: 6 } },
  ] satisfies FulfillmentEvent[],
  sales: [
    { ...envelope(), type: 'SaleRecorded', payload: {
      saleId: 's1', saleAmount: usd(3000), marketplaceFee: usd(390), paymentFee: usd(0), supplierCost: usd(1100),
      supplierCostCharged: usd(1100), fx: null, grossProfit: usd(1510), commissionRateBps: 1000,
      platformCommission: usd(151), sellerNetProfit: usd(1359), loss: usd(0), isLoss: false, recordedAt: 7 } },
    { ...envelope(), type: 'SaleReversed', payload: {
      saleId: 's1', reversalId: 'r1', kind: 'PARTIAL_REFUND', refundedAmount: usd(1000), commissionReversed: usd(50),
      sellerNetReversed: usd(453), reversedAt: 8 } },
  ] satisfies SaleEvent[],
  payouts: [
    { ...envelope(), type: 'PayoutSent', payload: {
      payoutId: 'p1', recipient: 'SELLER', amount: usd(1359), senderItemId: 'ord_1-SELLER-1', payoutBatchId: 'B1',
      payoutItemId: 'I1', sentAt: 9, owedAmount: null, fxRate: null, fxRateDate: null } },
    { ...envelope(), type: 'PayoutSent', payload: {
      payoutId: 'p2', recipient: 'SELLER', amount: usd(1052), senderItemId: 'ord_2-SELLER-1', payoutBatchId: 'B2',
      payoutItemId: 'I2', sentAt: 9, owedAmount: { amountMinor: 10000, currency: 'CLP' }, fxRate: '0.00105263', fxRateDate: '2025-01-02' } },
    { ...envelope(), type: 'PayoutFailed', payload: {
      payoutId: 'p1', recipient: 'SELLER', amount: usd(1359), status: 'FAILED', reason: 'RECEIVER_UNREGISTERED',
      owedAgain: true, failedAt: 10 } },
    { ...envelope(), type: 'PayoutReturned', payload: {
      payoutId: 'p1', recipient: 'PLATFORM', amount: usd(151), status: 'UNCLAIMED', reason: 'unclaimed for 30 days',
      returnedAt: 11 } },
  ] satisfies PayoutEvent[],
};
