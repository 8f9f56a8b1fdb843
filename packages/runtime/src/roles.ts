import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { AppError, unauthorized } from './errors';
import { validate } from './http';
import { storableText } from './input-guard';

/**
 * Two credentials per deployment: the admin token writes, the operator token reads. Who is calling comes from the
 * credential alone — never from a header the caller chooses. Digests are compared in constant time.
 */
export type Role = 'admin' | 'operator';

const digest = (t: string) => createHash('sha256').update(t).digest();

export function roleOf(authorization: string | undefined, tokens: { admin: string; operator?: string | undefined }): Role | undefined {
  const given = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
  if (!given) return undefined;
  const g = digest(given);
  const isAdmin = timingSafeEqual(g, digest(tokens.admin));
  const isOperator = tokens.operator ? timingSafeEqual(g, digest(tokens.operator)) : false;
  return isAdmin ? 'admin' : isOperator ? 'operator' : undefined;
}

/**
 * Guard for /admin routes: 401 without a known credential; the operator credential may only read (GET/HEAD), any
 * other method is 403 FORBIDDEN. The caller's role is kept for the handlers (`actorOf(res)`).
 */
export function requireRoles(tokens: { admin: string; operator?: string | undefined }): RequestHandler {
  if (tokens.operator && tokens.operator === tokens.admin) throw new Error('OPERATOR_TOKEN must differ from ADMIN_TOKEN');
  return (req, res, next) => {
    const role = roleOf(req.get('authorization'), tokens);
    if (!role) return next(unauthorized());
    if (role !== 'admin' && req.method !== 'GET' && req.method !== 'HEAD') {
      return next(new AppError('FORBIDDEN', 'the operator credential reads only; this needs the admin credential', { status: 403 }));
    }
    res.locals.actor = role;
    next();
  };
}

/** The role that authenticated this request (set by requireRoles). */
export function actorOf(res: Response): Role {
  const actor = res.locals.actor as Role | undefined;
  if (!actor) throw new Error('actorOf() outside requireRoles');
  return actor;
}

/** `GET /admin/whoami` behind requireRoles: which role the presented credential has (tools check before acting). */
export function whoami(): RequestHandler {
  return (_req, res) => {
    res.json({ role: actorOf(res) });
  };
}

/** `Rosa` → `R***`: enough for an operator to recognise a record, not to read personal data. */
export function maskText(v: unknown): unknown {
  return typeof v === 'string' && v.length > 0 ? `${v.slice(0, 1)}***` : v;
}

/** An address with every field masked except the country. */
export function maskAddress<T extends Record<string, unknown> | null | undefined>(a: T): T {
  if (!a) return a;
  return { ...Object.fromEntries(Object.entries(a).map(([k, v]) => [k, maskText(v)])), countryCode: a.countryCode } as unknown as T;
}

const revealQuery = z.object({ reveal: z.literal('true').optional(), reason: storableText(500, 3).optional() });

/**
 * A read asks for personal data in clear with `?reveal=true&reason=…` (every service the same way): undefined when it
 * did not ask, 400 REASON_REQUIRED when it asked without a reason. Who asks comes from the credential; the caller
 * records the reveal in its audit trail before showing anything.
 */
export function revealRequest(req: Request, res: Response): { actor: Role; reason: string } | undefined {
  const q = validate(revealQuery, { reveal: req.query.reveal, reason: req.query.reason }, 'INVALID_QUERY');
  if (q.reveal !== 'true') return undefined;
  if (!q.reason) throw new AppError('REASON_REQUIRED', 'revealing personal data needs a reason', { status: 400 });
  return { actor: actorOf(res), reason: q.reason };
}

/** Why an admin made a write (`X-Audit-Reason`, optional): kept in the audit trail with the write. */
export function auditReason(req: Request): string | null {
  const reason = req.get('x-audit-reason');
  return reason && reason.length <= 500 ? reason : null;
}
