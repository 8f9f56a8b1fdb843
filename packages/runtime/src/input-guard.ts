import type { RequestHandler } from 'express';
import { z } from 'zod';
import { badRequest } from './errors';

/**
 * Input hygiene for public routes: nothing a stranger sends may reach Postgres in a form it refuses (NUL bytes, invalid
 * UTF-8, lone surrogates, values longer than a column). Refusals are 4xx with a code, never a 5xx.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** true when the string can be stored as Postgres text: no NUL and well-formed UTF-16 (so it encodes to valid UTF-8). */
export function isStorableText(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s);
}

/** A zod string that Postgres can store, between `min` and `max` characters. */
export function storableText(max: number, min = 1) {
  return z.string().min(min).max(max).refine(isStorableText, { message: 'contains a NUL byte or invalid Unicode' });
}

/** A decimal id (MercadoLibre user ids, order ids) given as a JSON number or a string of digits; kept as text. */
export function decimalId(maxDigits = 20) {
  return z.union([
    z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).transform((n) => String(n)),
    z.string().regex(new RegExp(`^\\d{1,${maxDigits}}$`)),
  ]);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The first problem found in a parsed JSON value (a NUL, a lone surrogate, too deep, too many nodes), or undefined. */
export function jsonProblem(value: unknown, limits: { maxDepth?: number; maxNodes?: number } = {}): { code: string; message: string } | undefined {
  const maxDepth = limits.maxDepth ?? 32;
  const maxNodes = limits.maxNodes ?? 20_000;
  let nodes = 0;
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (++nodes > maxNodes) return { code: 'BODY_TOO_COMPLEX', message: 'the body has too many values' };
    if (depth > maxDepth) return { code: 'BODY_TOO_DEEP', message: 'the body is nested too deeply' };
    if (typeof v === 'string') {
      if (!isStorableText(v)) return { code: 'INVALID_CHARACTERS', message: 'the body contains a NUL byte or invalid Unicode' };
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push({ v: item, depth: depth + 1 });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        if (!isStorableText(k)) return { code: 'INVALID_CHARACTERS', message: 'the body contains a NUL byte or invalid Unicode' };
        stack.push({ v: item, depth: depth + 1 });
      }
    }
  }
  return undefined;
}

/**
 * Middleware for public routes: the raw body must be valid UTF-8 and the parsed body (and query) free of NUL bytes and
 * lone surrogates, within depth and size limits. Runs before any handler, so a refusal writes nothing.
 */
export function requireCleanInput(): RequestHandler {
  return (req, _res, next) => {
    if (req.rawBody && req.rawBody.length > 0) {
      try {
        utf8.decode(req.rawBody);
      } catch {
        return next(badRequest('INVALID_UTF8', 'the body is not valid UTF-8'));
      }
    }
    const problem = jsonProblem(req.body) ?? jsonProblem(req.query, { maxDepth: 4, maxNodes: 200 });
    if (problem) return next(badRequest(problem.code, problem.message));
    if (req.originalUrl.length > 2048) return next(badRequest('URL_TOO_LONG', 'the URL is too long'));
    next();
  };
}
