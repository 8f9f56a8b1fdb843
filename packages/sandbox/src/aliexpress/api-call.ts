import { gatewayErrors, type GatewayError } from './envelope';
import type { FakeState } from './state';

/** One authenticated gateway call, after signature, quota and token checks passed. */
export interface ApiCall {
  method: string;
  params: Record<string, string>;
  appKey: string;
  account: string;
}

export type ApiAnswer = { result: unknown } | { error: GatewayError };

export type ApiHandler = (state: FakeState, call: ApiCall) => ApiAnswer;

/** Business parameters that are objects arrive as JSON strings; this reads one, or says which gateway error applies. */
export function jsonParam(
  call: ApiCall,
  name: string,
  required: boolean,
): { value: Record<string, unknown> | undefined } | { error: GatewayError } {
  const raw = call.params[name];
  if (raw === undefined || raw === '') return required ? { error: gatewayErrors.missingParameter(name) } : { value: undefined };
  try {
    const value: unknown = JSON.parse(raw);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return { error: gatewayErrors.invalidParameter(name, 'expected a JSON object') };
    }
    return { value: value as Record<string, unknown> };
  } catch {
    return { error: gatewayErrors.invalidParameter(name, 'not valid JSON') };
  }
}

export function asString(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : String(value);
}

export function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** AliExpress prints times as "yyyy-MM-dd HH:mm:ss"; this fake uses Beijing time (UTC+8), without a zone marker. */
export function aliTime(epochMs: number): string {
  return new Date(epochMs + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
}
