import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Keys whose values never reach a log line: secrets and personal data. Matched case-insensitively at any depth, so
 * a new payload shape cannot leak an email just because nobody listed its path.
 */
const SENSITIVE_KEY = /(pass(word)?|secret|token|authorization|api[-_]?key|cookie|signature|sig$|credential|e-?mail|^name$|full_?name|given_?name|surname|first_?name|last_?name|receiver_?name|contact_?person|phone|mobile|address|line1|line2|street|zip|postal|cpf|tax_?number|receiver$|payer$|buyer$|ship_?to)/i;
export const REDACTED = '[redacted]';

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: value.message, code: (value as { code?: unknown }).code, stack: value.stack };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SENSITIVE_KEY.test(key) ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

export function createLogger(service: string, level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name: service,
      level,
      base: { service },
      formatters: { log: (object) => redact(object) as Record<string, unknown> },
      // messages are fixed strings by convention; data goes in the object, where it is redacted
    },
    destination,
  );
}
