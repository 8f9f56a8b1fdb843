import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type Role = 'operator' | 'admin';

/**
 * A session is a signed cookie (no server-side store), so any replica of the console accepts it. It carries the
 * person's name and role, the CSRF token their forms must echo, and the orders whose personal data they revealed.
 */
export interface Session {
  name: string;
  role: Role;
  csrf: string;
  exp: number;
  /** orderId → epoch ms until which its personal data is shown unmasked */
  reveals: Record<string, number>;
}

export const SESSION_COOKIE = 'postsale_console';
export const SESSION_TTL_MS = 8 * 3600_000;
export const REVEAL_TTL_MS = 10 * 60_000;

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const mac = (payload: string, secret: string) => createHmac('sha256', secret).update(payload).digest('base64url');

export function newSession(name: string, role: Role, now = Date.now()): Session {
  return { name, role, csrf: randomBytes(24).toString('base64url'), exp: now + SESSION_TTL_MS, reveals: {} };
}

export function sealSession(session: Session, secret: string): string {
  const payload = b64(JSON.stringify(session));
  return `${payload}.${mac(payload, secret)}`;
}

export function openSession(cookie: string | undefined, secret: string, now = Date.now()): Session | undefined {
  if (!cookie) return undefined;
  const [payload, signature, extra] = cookie.split('.');
  if (!payload || !signature || extra !== undefined) return undefined;
  const expected = Buffer.from(mac(payload, secret));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  try {
    const session = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Session;
    if (typeof session.exp !== 'number' || session.exp < now) return undefined;
    if (session.role !== 'operator' && session.role !== 'admin') return undefined;
    // Expired reveals fall off here, so a cookie never grows without bound.
    session.reveals = Object.fromEntries(Object.entries(session.reveals ?? {}).filter(([, until]) => until > now).slice(-20));
    return session;
  } catch {
    return undefined;
  }
}

/** Constant-time comparison of a presented credential with a configured one. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHmac('sha256', 'compare').update(given).digest();
  const b = createHmac('sha256', 'compare').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}
