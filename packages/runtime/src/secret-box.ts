import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

/**
 * Encrypts per-seller credentials at rest (AES-256-GCM, 96-bit random IV, 128-bit tag).
 *
 * - Each value is bound to where it belongs: the additional authenticated data is the owner (seller id) and the field
 *   (column, plus the account it is for). A sealed value copied to another seller's row, or to another column, does
 *   not open.
 * - The stored form is `v2:<keyId>:<iv>:<tag>:<ciphertext>` (base64 parts). The key id says which key sealed it, so
 *   keys can rotate: the current key (CREDENTIALS_KEY, id CREDENTIALS_KEY_ID) seals; it and the previous keys
 *   (CREDENTIALS_PREVIOUS_KEYS) open. The rotation command re-seals every value that `isCurrent` says is not.
 * - The tag must be exactly 16 bytes: GCM would otherwise accept a truncated tag, which is easier to forge.
 * - Values sealed before binding (`v1:<iv>:<tag>:<ciphertext>`, no key id, no AAD) still open with any configured key,
 *   until the rotation command re-seals them as v2.
 */
export interface SealContext {
  /** whose secret it is: the seller id */
  owner: string;
  /** which secret of theirs: table.column, plus the account/marketplace when one seller has several */
  field: string;
}

export interface SecretBox {
  /** id of the key that seals */
  readonly keyId: string;
  seal(plaintext: string, context: SealContext): string;
  open(sealed: string, context: SealContext): string;
  /** sealed in the current format with the current key: nothing for the rotation to do */
  isCurrent(sealed: string): boolean;
}

export interface SecretBoxKeys {
  /** base64 of 32 bytes */
  key: string;
  /** defaults to a fingerprint of the key */
  keyId?: string;
  /** keys that may still open values: comma-separated `id:base64` (or bare base64, id = fingerprint) */
  previousKeys?: string;
}

const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** A key's default id: the first 12 hex digits of SHA-256 over the key (tells keys apart, reveals nothing useful). */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

function decodeKey(base64: string, what: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new Error(`${what} must be 32 bytes, base64-encoded`);
  return key;
}

/** Problems with a key configuration, for a service's config schema (names the variable, never the value). */
export function secretBoxKeyProblems(keys: { key?: string; keyId?: string; previousKeys?: string }): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (keys.key !== undefined && Buffer.from(keys.key, 'base64').length !== 32) problems.push(['CREDENTIALS_KEY', 'must be base64 of exactly 32 bytes']);
  if (keys.keyId !== undefined && !KEY_ID.test(keys.keyId)) problems.push(['CREDENTIALS_KEY_ID', 'letters, digits, _ . - (at most 64)']);
  if (keys.previousKeys) {
    try {
      parsePreviousKeys(keys.previousKeys);
    } catch (error) {
      problems.push(['CREDENTIALS_PREVIOUS_KEYS', (error as Error).message]);
    }
  }
  return problems;
}

function parsePreviousKeys(list: string): Array<[string, Buffer]> {
  return list.split(',').map((s) => s.trim()).filter(Boolean).map((entry, i) => {
    const colon = entry.indexOf(':');
    const [id, base64] = colon >= 0 ? [entry.slice(0, colon), entry.slice(colon + 1)] : [undefined, entry];
    const key = decodeKey(base64, `previous key #${i + 1}`);
    if (id !== undefined && !KEY_ID.test(id)) throw new Error(`previous key #${i + 1}: bad key id`);
    return [id ?? keyFingerprint(key), key];
  });
}

function aad(keyId: string, context: SealContext): Buffer {
  if (!context.owner || !context.field) throw new Error('a sealed secret needs its owner and field');
  return Buffer.from(JSON.stringify(['postsale.secret.v2', keyId, context.owner, context.field]), 'utf8');
}

function decrypt(key: KeyObject, iv: string, tag: string, body: string, additional?: Buffer): string {
  const tagBytes = Buffer.from(tag, 'base64');
  const ivBytes = Buffer.from(iv, 'base64');
  if (tagBytes.length !== TAG_BYTES) throw new Error('sealed secret: authentication tag is not 16 bytes');
  if (ivBytes.length !== 12) throw new Error('sealed secret: IV is not 12 bytes');
  const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: TAG_BYTES });
  if (additional) decipher.setAAD(additional);
  decipher.setAuthTag(tagBytes);
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
}

export function createSecretBox(keys: string | SecretBoxKeys): SecretBox {
  const config = typeof keys === 'string' ? { key: keys } : keys;
  const key = decodeKey(config.key, 'the credentials encryption key');
  const keyId = config.keyId ?? keyFingerprint(key);
  if (!KEY_ID.test(keyId)) throw new Error('the credentials key id must be letters, digits, _ . - (at most 64)');
  const byId = new Map<string, Buffer>(config.previousKeys ? parsePreviousKeys(config.previousKeys) : []);
  if (byId.has(keyId) && !byId.get(keyId)!.equals(key)) throw new Error(`key id ${keyId} names two different keys`);
  byId.set(keyId, key);
  // KeyObjects made once: a raw key given to each cipher is imported again on every call (≈ 10 µs each, measured)
  const sealingKey = createSecretKey(key);
  const opening = new Map([...byId].map(([id, k]) => [id, createSecretKey(k)]));

  return {
    keyId,
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', sealingKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad(keyId, context));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return ['v2', keyId, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
    },
    open(sealed, context) {
      const parts = sealed.split(':');
      if (parts[0] === 'v2' && parts.length === 5) {
        const [, id, iv, tag, body] = parts as [string, string, string, string, string];
        const k = opening.get(id);
        if (!k) throw new Error(`sealed secret: key ${id} is not configured (CREDENTIALS_KEY / CREDENTIALS_PREVIOUS_KEYS)`);
        return decrypt(k, iv, tag, body, aad(id, context));
      }
      if (parts[0] === 'v1' && parts.length === 4) {
        // Sealed before owner binding and key ids: any configured key may have sealed it; GCM tells which one did.
        const [, iv, tag, body] = parts as [string, string, string, string];
        for (const k of [sealingKey, ...opening.values()]) {
          try {
            return decrypt(k, iv, tag, body);
          } catch {
            // the next key
          }
        }
        throw new Error('sealed secret (v1) does not open with any configured key');
      }
      throw new Error('unrecognised sealed secret');
    },
    isCurrent(sealed) {
      return sealed.startsWith(`v2:${keyId}:`);
    },
  };
}

/** A v1 value, as sealed before owner binding; for tests of the migration path only. */
export function sealLegacyV1(keyBase64: string, plaintext: string): string {
  const key = decodeKey(keyBase64, 'key');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
}
