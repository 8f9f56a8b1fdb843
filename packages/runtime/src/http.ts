import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import { AppError, badRequest, classifyError, isAppError, unauthorized } from './errors';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

declare module 'http' {
  interface IncomingMessage {
    /** the exact bytes of a JSON body, for signature checks over raw bytes (PayPal's CRC32) */
    rawBody?: Buffer;
  }
}

export type ReadinessCheck = () => Promise<void>;

export interface HttpAppOptions {
  logger: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** express "trust proxy" (TRUST_PROXY): whose X-Forwarded-For gives a request's address; default loopback only */
  trustProxy?: number | string[];
  readiness: Record<string, ReadinessCheck>;
  /** mounts the service's own routes */
  routes?: (app: Express) => void;
}

/**
 * The express app every service uses: JSON bodies (raw bytes kept), a body size limit, request metrics, /healthz,
 * /readyz, /metrics, and one error handler that answers `{error:{code,message}}` — never an HTML page or a stack.
 */
export function createHttpApp(options: HttpAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  // no ETag: express hashes every body it sends for one (SHA-1, POST answers too), and no client here revalidates
  app.disable('etag');
  app.set('trust proxy', options.trustProxy ?? 'loopback');

  const requests = options.metrics.counter('http_requests_total', 'HTTP requests by route and status', ['method', 'route', 'status']);
  const duration = options.metrics.histogram('http_request_duration_seconds', 'HTTP request duration by route', ['method', 'route', 'status'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      const labels = { method: req.method, route, status: String(res.statusCode) };
      requests.inc(labels);
      duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  });

  app.use(
    express.json({
      limit: options.bodyLimitBytes,
      type: ['application/json', 'application/*+json'],
      verify: (req, _res, buf) => {
        req.rawBody = Buffer.from(buf);
      },
    }),
  );
  app.use(express.urlencoded({ extended: false, limit: options.bodyLimitBytes }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      Object.entries(options.readiness).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 2000);
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, error instanceof Error ? error.message : 'failed'] as const;
        }
      }),
    );
    const ready = results.every(([, r]) => r === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not-ready', checks: Object.fromEntries(results) });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics());
  });

  options.routes?.(app);

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });
  app.use(errorHandler(options.logger));
  return app;
}

function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const parserError = error as { type?: string; status?: number };
    let appError: AppError;
    if (isAppError(error)) appError = error;
    else if (parserError.type === 'entity.too.large') appError = new AppError('PAYLOAD_TOO_LARGE', 'request body is too large', { status: 413 });
    else if (parserError.type === 'entity.parse.failed') appError = badRequest('MALFORMED_JSON', 'request body is not valid JSON');
    else if (parserError.type === 'encoding.unsupported' || parserError.type === 'charset.unsupported') {
      appError = new AppError('UNSUPPORTED_ENCODING', 'unsupported body encoding', { status: 415 });
    } else if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
      appError = new AppError('BAD_REQUEST', 'the request could not be read', { status: parserError.status });
    } else if (classifyError(error).kind === 'transient') {
      // e.g. the database is unreachable: the caller should retry, and nothing was committed
      appError = new AppError('UNAVAILABLE', 'temporarily unavailable; try again', { status: 503, retriable: true, cause: error });
    } else {
      appError = new AppError('INTERNAL', 'internal error', { status: 500, cause: error });
    }
    if (appError.status >= 500) logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
    else logger.info({ code: appError.code, method: req.method, path: req.path, status: appError.status }, 'request refused');
    if (res.headersSent) return;
    const body: { code: string; message: string; details?: unknown } = { code: appError.code, message: appError.message };
    if (appError.details !== undefined && appError.status < 500) body.details = appError.details;
    if (appError.status === 503) res.setHeader('retry-after', '1');
    res.status(appError.status).json({ error: body });
  };
}

/** Bearer-token guard for /admin routes. Compares digests in constant time, so timing reveals nothing of the token. */
export function requireBearer(token: string): RequestHandler {
  const expected = createHash('sha256').update(token).digest();
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer (.+)$/i.exec(header);
    const given = createHash('sha256').update(match?.[1] ?? '').digest();
    if (!match || !timingSafeEqual(given, expected)) return next(unauthorized());
    next();
  };
}

/** Parses input with a zod schema; a failure is a 400 with a machine-readable code and the issues. */
export function validate<S extends z.ZodType>(schema: S, input: unknown, code = 'INVALID_REQUEST'): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw badRequest(code, 'the request does not match the expected shape', result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  return result.data;
}

export async function listen(app: Express, port: number, host = '0.0.0.0'): Promise<{ server: Server; port: number }> {
  const server = await new Promise<Server>((resolve, reject) => {
    // Express 5 calls back with the listen error (EADDRINUSE) too; resolving then would hide it
    const s = app.listen(port, host, (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  return { server, port: (server.address() as AddressInfo).port };
}

export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
