/**
 * The one error type. `code` is machine-readable and reaches API clients and DLQ headers; `status` is what the HTTP
 * layer answers; `retriable` tells the consumer runner whether trying again can help.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retriable: boolean;
  readonly details?: unknown;

  constructor(code: string, message: string, options: { status?: number; retriable?: boolean; details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = options.status ?? 500;
    this.retriable = options.retriable ?? false;
    this.details = options.details;
  }
}

export const badRequest = (code: string, message: string, details?: unknown) => new AppError(code, message, { status: 400, details });
export const unauthorized = (message = 'missing or invalid credentials') => new AppError('UNAUTHORIZED', message, { status: 401 });
export const notFound = (code: string, message: string) => new AppError(code, message, { status: 404 });
export const conflict = (code: string, message: string, details?: unknown) => new AppError(code, message, { status: 409, details });
/** An outside system or our infrastructure failed in a way that may pass. */
export const transientFailure = (code: string, message: string, cause?: unknown) =>
  new AppError(code, message, { status: 503, retriable: true, cause });

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/**
 * How a failure should be handled, decided in one place for the consumer runner, the outbox relay and the pollers:
 * - `transient`: infrastructure that may come back (a connection refused or cut, a timeout, a serialization failure
 *   or deadlock, a server shutting down, a broker or registry unavailable) or a `retriable` AppError. Retry with
 *   backoff for as long as it lasts; never dead-letter.
 * - `permanent`: a non-retriable AppError, i.e. the message or request itself is wrong. Dead-letter at once.
 * - `unknown`: anything else (most likely a bug, e.g. a TypeError or an unexpected SQL error). Retried a bounded
 *   number of times, then dead-lettered with its reason so it can be redriven after the fix, rather than blocking its
 *   partition forever.
 */
export type FailureKind = 'transient' | 'permanent' | 'unknown';
export interface FailureClass {
  kind: FailureKind;
  /** machine-readable: the AppError's code, or what kind of infrastructure failed */
  code: string;
}

/** socket and DNS failures (node's `code`); also found inside messages of clients that flatten errors */
const NETWORK_CODES = [
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN',
  'ECONNABORTED', 'EADDRNOTAVAIL', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET',
];
const NETWORK_IN_MESSAGE = new RegExp(`\\b(${NETWORK_CODES.join('|')})\\b`);

/** SQLSTATEs that describe the server or the moment, not the statement. */
function pgTransientCode(sqlstate: string): string | undefined {
  if (sqlstate.startsWith('08')) return 'DB_UNAVAILABLE'; // connection_exception, incl. 08006 and 08001 cannot connect
  if (sqlstate === '40001' || sqlstate === '40P01' || sqlstate === '55P03') return 'DB_CONFLICT'; // serialization, deadlock, lock not available
  if (sqlstate === '40003') return 'DB_UNAVAILABLE'; // statement completion unknown
  if (/^57P0[1-5]$/.test(sqlstate)) return 'DB_UNAVAILABLE'; // admin/crash shutdown, cannot connect now, idle timeout
  if (sqlstate.startsWith('53')) return 'DB_UNAVAILABLE'; // insufficient resources: too many connections, disk full
  if (sqlstate === '57014') return 'DB_TIMEOUT'; // statement timeout or cancelled
  if (sqlstate === '25006') return 'DB_UNAVAILABLE'; // read-only transaction: a failover is in progress
  if (sqlstate === '58000' || sqlstate === '58030') return 'DB_UNAVAILABLE'; // system or I/O error
  return undefined;
}

/** pg, pg-pool, knex and tarn report a lost or unobtainable connection by message only. */
const DB_CONNECTION_MESSAGES = [
  /Connection terminated/i, // "Connection terminated unexpectedly", "... due to connection timeout"
  /timeout expired/i, // pg Client connectionTimeoutMillis
  /timeout exceeded when trying to connect/i, // pg-pool
  /Client has encountered a connection error and is not queryable/i,
  /Client was closed and is not queryable/i,
  /Query read timeout/i,
  /Timeout acquiring a connection/i, // knex pool acquire timeout
];

/** kafkajs errors that it marks non-retriable although they only describe an unavailable cluster */
const KAFKA_TRANSIENT_NAMES = new Set([
  'KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError', 'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound', 'KafkaJSGroupCoordinatorNotFound', 'KafkaJSTimeout', 'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded', 'KafkaJSTopicMetadataNotLoaded', 'KafkaJSStaleTopicMetadataAssignment',
]);

function infraTransient(error: unknown, depth = 0): string | undefined {
  if (depth > 8 || error === null || typeof error !== 'object') return undefined;
  const e = error as { name?: unknown; code?: unknown; message?: unknown; retriable?: unknown; status?: unknown; cause?: unknown; errors?: unknown };
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : '';
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (name.startsWith('KafkaJS') && (e.retriable === true || KAFKA_TRANSIENT_NAMES.has(name))) return 'KAFKA_UNAVAILABLE';
  if (code && NETWORK_CODES.includes(code)) return 'CONNECTION_FAILED';
  if (code && /^[0-9A-Z]{5}$/.test(code) && name !== 'AppError') {
    const pg = pgTransientCode(code);
    if (pg) return pg;
  }
  if (name === 'KnexTimeoutError') return 'DB_TIMEOUT'; // pool acquire timeout or a query's .timeout()
  if (DB_CONNECTION_MESSAGES.some((re) => re.test(message))) return 'DB_UNAVAILABLE';
  // The schema registry client flattens network failures into "status 400: connect ECONNREFUSED ..."; 5xx and 429 pass.
  if (name === 'ResponseError' && typeof e.status === 'number') {
    if (e.status >= 500 || e.status === 429 || NETWORK_IN_MESSAGE.test(message)) return 'REGISTRY_UNAVAILABLE';
  }
  if (name === 'TypeError' && message === 'fetch failed') return 'CONNECTION_FAILED'; // undici; cause says why
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const found = infraTransient(inner, depth + 1);
      if (found) return found;
    }
  }
  return infraTransient(e.cause, depth + 1);
}

/** The one classification of failures; see `FailureKind`. */
export function classifyError(error: unknown): FailureClass {
  const infra = infraTransient(error);
  if (isAppError(error)) {
    // A wrapper that forgot the flag must not turn a database outage into a dead letter.
    if (error.retriable || infra) return { kind: 'transient', code: error.code };
    return { kind: 'permanent', code: error.code };
  }
  if (infra) return { kind: 'transient', code: infra };
  return { kind: 'unknown', code: 'INTERNAL' };
}

/** False only for failures caused by the message or request itself. */
export function isRetriable(error: unknown): boolean {
  return classifyError(error).kind !== 'permanent';
}

export function errorCode(error: unknown): string {
  return classifyError(error).code;
}
