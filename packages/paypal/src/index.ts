/**
 * @postsale/paypal — the small PayPal REST surface shared by ingest (checkout capture, capture webhooks) and payouts
 * (payout webhooks):
 *
 * - `createPayPalTokenClient({baseUrl, clientId, clientSecret})` → `{getToken(), invalidate()}`: OAuth2 client
 *   credentials, cached until shortly before expiry.
 * - `paypalRequest(baseUrl, tokenClient, {method, path, body, headers})`: one authenticated JSON call; a stale token
 *   is refreshed once; failures are `AppError`s (`PayPalApiError` carries PayPal's `details[].issue` codes,
 *   retriable for 5xx/429/network).
 * - `createPayPalWebhookVerifier({mode, webhookId, baseUrl, tokenClient, allowedCertHosts})` →
 *   `verify({headers, rawBody, parsedBody}) → Promise<boolean>`: real signature checks, offline (certificate +
 *   CRC32) or online (PayPal's verify-webhook-signature API).
 */
export * from './token-client';
export * from './http';
export * from './webhook-verifier';
