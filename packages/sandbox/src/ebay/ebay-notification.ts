import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';

/**
 * eBay Notification API messages and their `X-EBAY-SIGNATURE` header. eBay signs `JSON.stringify(parsedBody)` (the
 * compact re-serialisation, not the raw bytes) with ECDSA over SHA-1 and publishes the public key by key id.
 */
export interface EbayNotificationLine {
  lineItemId: string;
  /** the listing (legacy item) id; defaults to `legacyItemId`, so an order's `lineItems` can be passed as-is */
  listingId?: string;
  legacyItemId?: string;
  quantity: number;
}

export interface EbayNotificationInput {
  orderId: string;
  lineItems: EbayNotificationLine[];
  /** the seller's username and immutable user id */
  username: string;
  userId: string;
  notificationId?: string;
  eventDate?: Date;
  publishAttemptCount?: number;
}

export interface EbayOrderConfirmationBody {
  metadata: { topic: 'ORDER_CONFIRMATION'; schemaVersion: string; deprecated: boolean };
  notification: {
    notificationId: string;
    eventDate: string;
    publishDate: string;
    publishAttemptCount: number;
    data: {
      user: { userId: string; username: string };
      order: { orderId: string; orderLineItems: Array<{ orderLineItemId: string; listingId: string; quantity: number }> };
    };
  };
}

export interface EbaySignedNotification {
  body: EbayOrderConfirmationBody;
  headers: Record<string, string>;
}

export interface EbaySigningKey {
  kid: string;
  privateKey: KeyObject;
  /** eBay's published form: PEM markers with the base64 body on one line, no line breaks at all */
  publicKeyOneLine: string;
}

export function createSigningKey(kid: string = randomUUID()): EbaySigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const publicKeyOneLine = `-----BEGIN PUBLIC KEY-----${der.toString('base64')}-----END PUBLIC KEY-----`;
  return { kid, privateKey, publicKeyOneLine };
}

export function orderConfirmationBody(input: EbayNotificationInput): EbayOrderConfirmationBody {
  const event = input.eventDate ?? new Date();
  return {
    metadata: { topic: 'ORDER_CONFIRMATION', schemaVersion: '1.0', deprecated: false },
    notification: {
      notificationId: input.notificationId ?? `${randomUUID()}_${randomUUID()}`,
      eventDate: event.toISOString(),
      publishDate: new Date(Math.max(Date.now(), event.getTime())).toISOString(),
      publishAttemptCount: input.publishAttemptCount ?? 1,
      data: {
        user: { userId: input.userId, username: input.username },
        order: {
          orderId: input.orderId,
          orderLineItems: input.lineItems.map((line) => ({
            orderLineItemId: line.lineItemId,
            listingId: line.listingId ?? line.legacyItemId ?? '',
            quantity: line.quantity,
          })),
        },
      },
    },
  };
}

/** The `X-EBAY-SIGNATURE` value: base64 of `{alg, kid, signature (base64 DER), digest}`. */
export function signatureHeader(body: unknown, key: EbaySigningKey): string {
  // ECDSA keys sign in DER (ASN.1) encoding by default in node:crypto, which is what eBay publishes.
  const signature = sign('sha1', Buffer.from(JSON.stringify(body), 'utf8'), key.privateKey).toString('base64');
  const header = { alg: 'ecdsa', kid: key.kid, signature, digest: 'SHA1' };
  return Buffer.from(JSON.stringify(header), 'utf8').toString('base64');
}

export function signNotification(body: EbayOrderConfirmationBody, key: EbaySigningKey): EbaySignedNotification {
  return {
    body,
    headers: { 'Content-Type': 'application/json', 'X-EBAY-SIGNATURE': signatureHeader(body, key) },
  };
}

/** What an endpoint must answer to eBay's validation GET: hex(sha256(challengeCode + verificationToken + endpoint)). */
export function challengeResponseFor(challengeCode: string, verificationToken: string, endpointUrl: string): string {
  return createHash('sha256').update(challengeCode).update(verificationToken).update(endpointUrl).digest('hex');
}
