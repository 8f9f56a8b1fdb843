import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { brotliDecompress, gunzip, inflate, type InputType } from 'node:zlib';

/*
 * The one HTTP client the services use to call the outside (marketplaces, AliExpress, PayPal): node:http over
 * keep-alive agents. It replaced the global fetch, whose WHATWG layers (undici's Request/Response objects, web streams,
 * an AbortSignal per call) cost ≈ 250 µs of CPU per call against ≈ 70 µs here (measured on this project's machine, a
 * 500-byte JSON POST to a local server), and which asked every server for gzip: decompressing eBay's answers was 5 %
 * of ingest's CPU. Answers are read whole into a string, as every caller parsed them anyway.
 *
 * What callers can rely on:
 * - `timeoutMs` bounds the whole call (waiting for a socket, connecting, sending, the answer and its body); it then
 *   fails with an error named `TimeoutError`, as `AbortSignal.timeout` did.
 * - A connection that fails rejects with Node's own error (`code` ECONNREFUSED, ECONNRESET, …), which the runtime's
 *   error classification treats as transient. A GET that meets a kept-alive connection the server is closing goes
 *   again once on a new one; other methods are never repeated here (a POST may have been acted on).
 * - Redirects are not followed: a 3xx is returned as it came (these APIs do not redirect; a redirect is an answer to
 *   look at, not to obey with the seller's token).
 * - No compression is asked for; an answer that comes compressed anyway (gzip, deflate, br) is decoded.
 * - An answer larger than `maxResponseBytes` (default 4 MiB, decoded) fails with `ResponseTooLargeError`.
 */

export interface OutboundRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Buffer | URLSearchParams;
  timeoutMs: number;
  maxResponseBytes?: number;
}

export interface OutboundResponse {
  status: number;
  /** 2xx */
  ok: boolean;
  /** a response header, by case-insensitive name (a repeated header's values joined with ", ") */
  header(name: string): string | undefined;
  /** the body, decoded as UTF-8 */
  text: string;
}

const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

// Keep-alive, most recently used socket first (the others may then idle out). An idle socket closes after 4 s, or
// 1 s before the server's own Keep-Alive timeout when it announces one (Node's agent reads the hint), so a request
// rarely meets a socket the server is closing; a socket in use is not closed by it (a slow answer waits for the
// call's own deadline). Up to 64 sockets per origin; more requests queue within their deadline.
const agentOptions = { keepAlive: true, scheduling: 'lifo' as const, timeout: 4_000, maxSockets: 64 };
const httpAgent = new HttpAgent(agentOptions);
const httpsAgent = new HttpsAgent(agentOptions);

export class HttpTimeoutError extends Error {
  constructor(url: URL, timeoutMs: number) {
    super(`no complete answer from ${url.origin} within ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

export class ResponseTooLargeError extends Error {
  readonly code = 'RESPONSE_TOO_LARGE';
  constructor(url: URL, limit: number) {
    super(`the answer from ${url.origin} is larger than ${limit} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

/** One HTTP call; resolves with the whole answer, whatever its status. See the module comment for the failures. */
export function callHttp(target: string | URL, request: OutboundRequest): Promise<OutboundResponse> {
  const url = typeof target === 'string' ? new URL(target) : target;
  const limit = request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const body = request.body === undefined ? undefined : typeof request.body === 'string' || Buffer.isBuffer(request.body) ? request.body : request.body.toString();
  const headers: Record<string, string | number> = { 'user-agent': 'postsale', ...request.headers };
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  // as fetch did: form parameters say what they are unless the caller said otherwise
  if (request.body instanceof URLSearchParams && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
  }
  const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
  if (!send) return Promise.reject(new TypeError(`unsupported protocol ${url.protocol}`));

  const method = request.method ?? 'GET';
  return new Promise<OutboundResponse>((resolve, reject) => {
    let settled = false;
    let outgoing: ClientRequest | undefined;
    const finish = (error: Error | undefined, response?: OutboundResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        outgoing?.destroy();
        reject(error);
      } else {
        resolve(response!);
      }
    };
    const timer = setTimeout(() => finish(new HttpTimeoutError(url, request.timeoutMs)), request.timeoutMs);
    const attempt = (isRetry: boolean) => {
      const current = send(url, { method, headers, agent: url.protocol === 'https:' ? httpsAgent : httpAgent });
      outgoing = current;
      let answered = false;
      current.on('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive socket reset before any answer: most likely the server closed it as we reused it. A GET is safe
        // to send again, once, on a new connection (within the same deadline); any other method is the caller's call.
        if (!answered && !isRetry && !settled && method === 'GET' && current.reusedSocket && error.code === 'ECONNRESET') {
          attempt(true);
          return;
        }
        finish(error);
      });
      current.on('response', (incoming) => {
        answered = true;
        readWhole(incoming, url, limit).then(
          (text) => finish(undefined, answer(incoming, text)),
          (error: Error) => finish(error),
        );
      });
      current.end(body);
    };
    attempt(false);
  });
}

function answer(incoming: IncomingMessage, text: string): OutboundResponse {
  const status = incoming.statusCode ?? 0;
  return {
    status,
    ok: status >= 200 && status < 300,
    header(name) {
      const value = incoming.headers[name.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    text,
  };
}

const DECODERS: Record<string, (input: InputType, options: { maxOutputLength: number }, done: (error: Error | null, result: Buffer) => void) => void> = {
  gzip: gunzip,
  'x-gzip': gunzip,
  deflate: inflate,
  br: brotliDecompress,
};

function readWhole(incoming: IncomingMessage, url: URL, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        incoming.destroy(new ResponseTooLargeError(url, limit));
        return;
      }
      chunks.push(chunk);
    });
    incoming.on('error', reject);
    // a connection cut mid-body ends the message as aborted, not with an error
    incoming.on('close', () => {
      if (!incoming.complete) reject(Object.assign(new Error(`the answer from ${url.origin} was cut off`), { code: 'ECONNRESET' }));
    });
    incoming.on('end', () => {
      const raw = Buffer.concat(chunks, size);
      const encoding = String(incoming.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding === 'identity' || encoding === '') return resolve(raw.toString('utf8'));
      const decode = DECODERS[encoding];
      if (!decode) return reject(new Error(`the answer from ${url.origin} is encoded as ${encoding}, which this client does not read`));
      decode(raw, { maxOutputLength: limit }, (error, decoded) => {
        if (!error) return resolve(decoded.toString('utf8'));
        reject((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? new ResponseTooLargeError(url, limit) : error);
      });
    });
  });
}
