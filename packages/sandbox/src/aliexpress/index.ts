/**
 * The AliExpress sandbox: the fake, its option and record types, and the shared request-signing helper. Generic type
 * names are re-exported with an AliExpress prefix so `export *` from the package root cannot collide with other fakes.
 */
export { startAliExpressFake, type AliExpressFake, type SellerCredentials as AliExpressSellerCredentials } from './fake';
export { signAliExpressRequest, aliExpressStringToSign, withAliExpressSignature, type AliExpressParams } from './sign';
export {
  callAliExpress,
  orderCreateParams as aliExpressOrderCreateParams,
  type AliExpressCallOptions,
  type OrderCreateInput as AliExpressOrderCreateInput,
} from './client';
export { ALIEXPRESS_API_METHODS } from './gateway';
export type {
  AliExpressEndReason,
  AliExpressFakeOptions,
  AliExpressOrderStatus,
  CountryTable as AliExpressCountryTable,
  LogisticsAddress as AliExpressLogisticsAddress,
  MethodFailureMode as AliExpressMethodFailureMode,
  PaymentOutcome as AliExpressPaymentOutcome,
  ProductSeed as AliExpressProductSeed,
  SkuSeed as AliExpressSkuSeed,
  SupplierOrder as AliExpressOrder,
  SupplierOrderItem as AliExpressOrderItem,
  TrackingEvent as AliExpressTrackingEvent,
  WebCheckoutSwitches as AliExpressWebCheckoutSwitches,
} from './types';
