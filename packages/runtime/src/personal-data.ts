import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Address, Buyer, OrderReceived } from '@postsale/contracts';
import { createSecretBox, keyFingerprint, type SecretBox } from './secret-box';

/**
 * Crypto-shredding of buyers' personal data in events. Each data subject (a buyer of a marketplace, or one order when
 * the marketplace names no buyer) has a random 32-byte data key; `OrderReceived` carries the buyer and ship-to sealed
 * under it (AES-256-GCM, bound to the order and subject by additional authenticated data) and null in clear. Data keys
 * never travel or rest in clear: they are sealed with the platform key-encryption key (`PERSONAL_DATA_KEY`, the same
 * in every service that reads personal data). Erasing a subject deletes its data key everywhere, after which every copy
 * of its events (topic, dead letters, replays) is unreadable, while ids, amounts and states stay in clear.
 */
export interface PersonalData {
  buyer: Buyer | null;
  shipTo: Address | null;
}

/** The platform key-encryption key: seals data keys, and derives the lookup id of a subject. */
export interface KeyEncryptionKey {
  readonly keyId: string;
  /** a data key sealed for one subject (does not open under another subject id) */
  wrap(dataKey: Buffer, subjectId: string): string;
  unwrap(sealedKey: string, subjectId: string): Buffer;
  /** keyed hash of a subject's natural id (marketplace + buyer id): finds its key without storing who it is */
  subjectRef(naturalId: string): string;
}

/**
 * Development and test only: a documented, public key so that services started locally (and tests) agree without
 * configuration. Production refuses to start without PERSONAL_DATA_KEY (see `personalDataKeyProblems`).
 */
export const DEVELOPMENT_PERSONAL_DATA_KEY = Buffer.from('postsale-dev-personal-data-key!!', 'utf8').toString('base64');

export const personalDataKeyShape = {
  /** 32 bytes, base64: the key-encryption key of buyers' data keys; the same in ingest and fulfillment; required in production */
  PERSONAL_DATA_KEY: z.string().optional().transform((s) => (s ? s : undefined)),
  /** id stored with every data key PERSONAL_DATA_KEY seals; defaults to a fingerprint of the key */
  PERSONAL_DATA_KEY_ID: z.string().optional().transform((s) => (s ? s : undefined)),
  /** keys that still open data keys during a rotation: comma-separated `id:base64` */
  PERSONAL_DATA_PREVIOUS_KEYS: z.string().optional().transform((s) => (s ? s : undefined)),
};

type PersonalDataKeyConfig = { NODE_ENV?: string; PERSONAL_DATA_KEY?: string; PERSONAL_DATA_KEY_ID?: string; PERSONAL_DATA_PREVIOUS_KEYS?: string };

/** What is wrong with the key-encryption key configuration, as `[variable, message]` (never the value). */
export function personalDataKeyProblems(c: PersonalDataKeyConfig): Array<[string, string]> {
  if (!c.PERSONAL_DATA_KEY) {
    return c.NODE_ENV === 'production' ? [['PERSONAL_DATA_KEY', 'required in production: 32 bytes, base64 (the same in ingest and fulfillment)']] : [];
  }
  try {
    keyEncryptionKey(c);
    return [];
  } catch (error) {
    return [['PERSONAL_DATA_KEY', (error as Error).message]];
  }
}

/** The configured key-encryption key; outside production, the development key when none is set. */
export function keyEncryptionKey(c: PersonalDataKeyConfig): KeyEncryptionKey {
  if (!c.PERSONAL_DATA_KEY && c.NODE_ENV === 'production') throw new Error('PERSONAL_DATA_KEY is required in production');
  const key = c.PERSONAL_DATA_KEY ?? DEVELOPMENT_PERSONAL_DATA_KEY;
  const raw = Buffer.from(key, 'base64');
  if (raw.length !== 32) throw new Error('must be base64 of exactly 32 bytes');
  const box: SecretBox = createSecretBox({ key, keyId: c.PERSONAL_DATA_KEY_ID ?? `kek-${keyFingerprint(raw)}`, previousKeys: c.PERSONAL_DATA_PREVIOUS_KEYS });
  // the lookup id needs its own key: a subject's ref must not be computable from anything that leaves the service
  const refKey = createSecretKey(createHmac('sha256', raw).update('postsale.subject-ref.v1').digest());
  const field = 'subject-data-key';
  return {
    keyId: box.keyId,
    wrap: (dataKey, subjectId) => box.seal(dataKey.toString('base64'), { owner: subjectId, field }),
    unwrap: (sealedKey, subjectId) => {
      const dataKey = Buffer.from(box.open(sealedKey, { owner: subjectId, field }), 'base64');
      if (dataKey.length !== 32) throw new Error('a data key must be 32 bytes');
      return dataKey;
    },
    subjectRef: (naturalId) => createHmac('sha256', refKey).update(naturalId).digest('hex'),
  };
}

export function newDataKey(): Buffer {
  return randomBytes(32);
}

const TAG_BYTES = 16;

/** Binds a ciphertext to its order and subject: moved into another order's event, it does not open. */
function aad(orderId: string, subjectId: string): Buffer {
  if (!orderId || !subjectId) throw new Error('sealed personal data needs its order and subject');
  return Buffer.from(JSON.stringify(['postsale.personal.v1', orderId, subjectId]), 'utf8');
}

/** `v1:<iv>:<tag>:<data>` (base64 parts) of the JSON of the personal data. */
export function sealPersonalData(dataKey: Buffer, at: { orderId: string; subjectId: string }, data: PersonalData): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(at.orderId, at.subjectId));
  const body = Buffer.concat([cipher.update(JSON.stringify({ buyer: data.buyer, shipTo: data.shipTo }), 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
}

export function openPersonalData(dataKey: Buffer, at: { orderId: string; subjectId: string }, ciphertext: string): PersonalData {
  const parts = ciphertext.split(':');
  if (parts.length !== 4 || parts[0] !== 'v1') throw new Error('unrecognised sealed personal data');
  const [, iv, tag, body] = parts as [string, string, string, string];
  const tagBytes = Buffer.from(tag, 'base64');
  if (tagBytes.length !== TAG_BYTES) throw new Error('sealed personal data: authentication tag is not 16 bytes');
  const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(iv, 'base64'), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(at.orderId, at.subjectId));
  decipher.setAuthTag(tagBytes);
  const json = Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
  const data = JSON.parse(json) as PersonalData;
  return { buyer: data.buyer ?? null, shipTo: data.shipTo ?? null };
}

/** The subject of an order: its buyer at that marketplace when the marketplace names one, else the order itself. */
export function naturalSubjectId(marketplace: string, orderId: string, buyerId: string | null | undefined): string {
  return buyerId ? `buyer:${marketplace}:${buyerId}` : `order:${orderId}`;
}

/** The order as published: personal fields null in clear, sealed under the subject's data key. */
export function sealOrderReceived(order: OrderReceived, orderId: string, subject: { subjectId: string; dataKey: Buffer }): OrderReceived {
  const ciphertext = sealPersonalData(subject.dataKey, { orderId, subjectId: subject.subjectId }, { buyer: order.buyer, shipTo: order.shipTo });
  return { ...order, buyer: null, shipTo: null, sealedPersonal: { subjectId: subject.subjectId, ciphertext } };
}

/** What a reader sees of an erased subject's order: no buyer, no address, and why. */
export function erasedOrderReceived(order: OrderReceived): OrderReceived {
  return { ...order, buyer: null, shipTo: null, shipToIssue: order.shipToIssue ?? 'PERSONAL_DATA_ERASED', sealedPersonal: null };
}
