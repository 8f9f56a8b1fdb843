/** The AliExpress sandbox: the fake, its option and record types, and the shared request-signing helper. */
export { startAliExpressFake, type AliExpressFake, type SellerCredentials } from './fake';
export { signAliExpressRequest, aliExpressStringToSign, withAliExpressSignature, type AliExpressParams } from './sign';
export { callAliExpress, orderCreateParams, type AliExpressCallOptions, type OrderCreateInput } from './client';
export { API_METHODS } from './gateway';
export type {
  AliExpressFakeOptions,
  AliExpressOrderStatus,
  CountryTable,
  LogisticsAddress,
  MethodFailureMode,
  PaymentOutcome,
  ProductSeed,
  SkuSeed,
  SupplierOrder,
  SupplierOrderItem,
  TrackingEvent,
  WebCheckoutSwitches,
} from './types';
