import type { NextFunction, Request, Response } from 'express';
import { gzipSync } from 'node:zlib';
import { bearerToken, randomHex } from '../fake-utils';

/**
 * HTTP conventions shared by every PayPal route of the fake: JSON with an explicit Content-Type (the payouts SDK
 * throws without one), gzip when the caller accepts it (the SDK always asks, and must be able to gunzip), a
 * `Paypal-Debug-Id` header, and PayPal's error body `{name, message, debug_id, details, links}`.
 */
export function sendJson(req: Request, res: Response, status: number, body: unknown): void {
  const debugId = randomHex(7).slice(0, 13);
  const json = JSON.stringify(body);
  res.status(status).set('Content-Type', 'application/json').set('Paypal-Debug-Id', debugId);
  if (/\bgzip\b/i.test(req.get('accept-encoding') ?? '')) {
    res.set('Content-Encoding', 'gzip').send(gzipSync(json));
    return;
  }
  res.send(Buffer.from(json, 'utf8'));
}

export interface PayPalErrorDetail {
  field?: string;
  value?: string;
  location?: 'body' | 'path' | 'query' | 'header';
  issue: string;
  description?: string;
  link?: unknown[];
}

export function paypalError(name: string, message: string, details: PayPalErrorDetail[] = [], informationLink?: string) {
  return {
    name,
    message,
    debug_id: randomHex(7).slice(0, 13),
    ...(informationLink ? { information_link: informationLink } : {}),
    details,
    links: informationLink ? [{ href: informationLink, rel: 'information_link', method: 'GET' }] : [],
  };
}

export function sendError(req: Request, res: Response, status: number, name: string, message: string, details: PayPalErrorDetail[] = [], link?: string): void {
  sendJson(req, res, status, paypalError(name, message, details, link));
}

export interface TokenStore {
  tokens: Map<string, { expiresAt: number }>;
}

/** Express middleware: a valid, unexpired Bearer token issued by this fake, or PayPal's 401 bodies. */
export function requireToken(store: TokenStore) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const token = bearerToken(req);
    if (!token) {
      sendJson(req, res, 401, {
        name: 'AUTHENTICATION_FAILURE',
        message: 'Authentication failed due to invalid authentication credentials or a missing Authorization header.',
        links: [{ href: 'https://developer.paypal.com/docs/api/overview/#error', rel: 'information_link' }],
      });
      return;
    }
    const entry = store.tokens.get(token);
    if (!entry || entry.expiresAt <= Date.now()) {
      sendJson(req, res, 401, { error: 'invalid_token', error_description: 'Access Token not found in cache' });
      return;
    }
    next();
  };
}

/** Base URL as the caller reached us, for HATEOAS links (the fake may be bound to a fixed or random port). */
export function baseUrlOf(req: Request): string {
  return `${req.protocol}://${req.get('host')}`;
}
