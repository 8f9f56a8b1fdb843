import type { Request, RequestHandler } from 'express';
import { AppError } from '@postsale/runtime';
import type { IngestMetrics } from '../metrics';

/**
 * Token bucket per source address (in memory, per replica): `perSecond` sustained, `burst` at once. Refusals are a
 * 429 with code RATE_LIMITED and Retry-After; marketplaces retry those deliveries later.
 *
 * What costs a token: a request whose authenticity cannot be checked on arrival (`unproven`: MercadoLibre's unsigned
 * notifications), and any other request once it was refused (a 4xx: forged signature, malformed body). So a flood of
 * forged or malformed requests is throttled, while verified notifications never are: eBay's and PayPal's traffic for
 * every seller comes from a few of their addresses, and a per-address limit on it would cap the whole product's intake
 * (and a Black-Friday burst would be answered 429 and arrive late).
 */
export function rateLimitPerAddress(options: {
  perSecond: number;
  burst: number;
  metrics: IngestMetrics;
  unproven: (req: Request) => boolean;
  now?: () => number;
}): RequestHandler {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  const limited = options.metrics.rateLimited;
  const bucketOf = (key: string) => {
    const t = now();
    const bucket = buckets.get(key) ?? { tokens: options.burst, at: t };
    bucket.tokens = Math.min(options.burst, bucket.tokens + ((t - bucket.at) / 1000) * options.perSecond);
    bucket.at = t;
    if (buckets.size > 10_000) buckets.clear(); // bounded memory under address spraying
    buckets.set(key, bucket);
    return bucket;
  };
  return (req, res, next) => {
    const key = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const bucket = bucketOf(key);
    if (bucket.tokens < 1) {
      limited.inc();
      res.set('Retry-After', String(Math.max(1, Math.ceil((1 - bucket.tokens) / options.perSecond))));
      return next(new AppError('RATE_LIMITED', 'too many requests from this address', { status: 429 }));
    }
    if (options.unproven(req)) {
      bucket.tokens -= 1;
    } else {
      res.once('finish', () => {
        // refusals charged once answered; requests already in flight can take it below zero (a longer wait, bounded)
        if (res.statusCode >= 400 && res.statusCode < 500) {
          const charged = bucketOf(key);
          charged.tokens = Math.max(-options.burst, charged.tokens - 1);
        }
      });
    }
    next();
  };
}
