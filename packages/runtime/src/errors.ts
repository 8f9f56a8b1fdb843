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

/** Unknown errors (a dropped DB connection, a bug) are treated as retriable a bounded number of times. */
export function isRetriable(error: unknown): boolean {
  return isAppError(error) ? error.retriable : true;
}

export function errorCode(error: unknown): string {
  return isAppError(error) ? error.code : 'INTERNAL';
}
