import { AppError, callHttp, transientFailure, type OutboundRequest, type OutboundResponse } from '@postsale/runtime';

/**
 * One JSON GET/POST to a marketplace, with its failures classified: network errors, timeouts, 5xx and 429 may pass
 * (retriable); 401/403 mean the seller's token is wrong or revoked; 404 means the resource does not exist for that
 * seller. Callers decide what each means for a delivery.
 */
export async function requestJson<T>(system: string, url: string, init: Omit<OutboundRequest, 'timeoutMs'> & { timeoutMs?: number } = {}): Promise<T> {
  let response: OutboundResponse;
  try {
    response = await callHttp(url, { ...init, timeoutMs: init.timeoutMs ?? 10_000 });
  } catch (error) {
    throw transientFailure(`${system}_UNREACHABLE`, `${system} could not be reached`, error);
  }
  const text = response.text;
  if (response.status >= 500 || response.status === 429) throw transientFailure(`${system}_UNAVAILABLE`, `${system} answered ${response.status}`);
  if (response.status === 401 || response.status === 403) {
    throw new AppError('SELLER_TOKEN_REJECTED', `${system} refused the credentials (${response.status})`, { status: 502 });
  }
  if (response.status === 404) throw new AppError('NOT_FOUND_AT_MARKETPLACE', `${system} does not know the resource`, { status: 502 });
  if (!response.ok) throw new AppError(`${system}_REJECTED`, `${system} answered ${response.status}`, { status: 502 });
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw transientFailure(`${system}_BAD_RESPONSE`, `${system} answered with something that is not JSON`, error);
  }
}
