// Faithful local fakes of the outside systems, for tests, the demo and the benchmark.
export * from './fake-server';
export * from './aliexpress';
export { startEbayFake, type EbayFake, type EbayFakeOptions, type EbayShippingFulfillment, type EbayDeliveryResult } from './ebay/ebay-fake';
export { buildEbayOrder, newEbayOrderId, type EbayOrder, type EbayLineItem, type EbayAmount, type EbayAddress, type EbayShipTo, type BuildEbayOrderInput, type EbayOrderLineInput, type EbayRefund } from './ebay/ebay-order';
export { challengeResponseFor as ebayChallengeResponseFor, type EbayNotificationInput, type EbayNotificationLine, type EbayOrderConfirmationBody, type EbaySignedNotification } from './ebay/ebay-notification';
export { startMercadoLibreFake, type MercadoLibreFake, type MercadoLibreFakeOptions, type MlNotification, type MlNotificationInput, type MlTrackingReport, type MlDeliveryResult } from './mercadolibre/mercadolibre-fake';
export { buildMlOrder, buildMlShipment, type MlOrder, type MlOrderItem, type MlOrderStatus, type MlPayment, type MlShipment, type MlShipmentMode, type MlReceiverAddress, type BuildMlOrderInput, type BuildMlShipmentInput, type MlOrderItemInput } from './mercadolibre/mercadolibre-order';
export { startPayPalFake, PAYPAL_FAKE_CLIENT_ID, PAYPAL_FAKE_CLIENT_SECRET, type PayPalFake, type PayPalFakeOptions, type WebhookDelivery as PayPalWebhookDelivery } from './paypal/paypal-fake';
export { buildCheckoutOrder as buildPayPalCheckoutOrder, type CheckoutOrderSeed as PayPalCheckoutOrderSeed, type CheckoutOrderInput as PayPalCheckoutOrderInput, type CaptureRecord as PayPalCaptureRecord, type CaptureOutcome as PayPalCaptureOutcome } from './paypal/checkout';
export { captureCompletedEvent, captureRefundedEvent, payoutItemEvent, payoutBatchEvent, webhookEvent as payPalWebhookEvent, signedMessage as payPalSignedMessage, type WebhookEvent as PayPalWebhookEvent, type SignedWebhook as PayPalSignedWebhook, type SignWebhookOptions as PayPalSignWebhookOptions, type CaptureEventInput as PayPalCaptureEventInput, type RefundEventInput as PayPalRefundEventInput, type PayoutItemEventType } from './paypal/webhooks';
export type { PaidItem as PayPalPaidItem, PayoutBatchSummary as PayPalPayoutBatchSummary, PayoutMatcher, PayoutOutcome, PayoutOutcomeOptions, PayoutItemStatus, PayoutBatchStatus, PayoutItemError, PayoutRefusal, PayoutRefusalOptions, DuplicateAnswer as PayoutDuplicateAnswer } from './paypal/payouts';
export * from './sandbox-world';
