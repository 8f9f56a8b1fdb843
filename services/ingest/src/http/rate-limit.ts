import type { RequestHandler } from 'express';
import { AppError } from '@postsale/runtime';
import type { IngestMetrics } from '../metrics';

/**
 * Token bucket per source address (in memory, per replica): `perSecond` sustained, `burst` at once. Refusals are a
 * 429 with code RATE_LIMITED and Retry-After; marketplaces retry those deliveries later.
 */
export function rateLimitPerAddress(options: { perSecond: number; burst: number; metrics: IngestMetrics; now?: () => number }): RequestHandler {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  const limited = options.metrics.rateLimited;
  return (req, res, next) => {
    const key = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const t = now();
    const bucket = buckets.get(key) ?? { tokens: options.burst, at: t };
    bucket.tokens = Math.min(options.burst, bucket.tokens + ((t - bucket.at) / 1000) * options.perSecond);
    bucket.at = t;
    if (buckets.size > 10_000) buckets.clear(); // bounded memory under address spraying
    buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      limited.inc();
      res.set('Retry-After', String(Math.max(1, Math.ceil((1 - bucket.tokens) / options.perSecond))));
      return next(new AppError('RATE_LIMITED', 'too many requests from this address', { status: 429 }));
    }
    bucket.tokens -= 1;
    next();
  };
}
