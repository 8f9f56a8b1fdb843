import { z } from 'zod';
import { kafkaSecurityProblems, kafkaSecurityShape } from '@postsale/runtime';

/**
 * The console's environment. It holds three credentials: the two people sign in with (operator: read, admin: write)
 * and the services' ADMIN_TOKEN, which never leaves this server.
 */
const schema = z
  .object({
    /** no default: production is never assumed to be development */
    NODE_ENV: z.enum(['development', 'test', 'production']),
    PORT: z.coerce.number().int().min(0).max(65535).default(3005),
    HOST: z.string().default('0.0.0.0'),
    CONSOLE_OPERATOR_TOKEN: z.string().min(16, 'at least 16 characters'),
    CONSOLE_ADMIN_TOKEN: z.string().min(16, 'at least 16 characters'),
    /** signs session cookies; required in production so every replica accepts the same sessions */
    CONSOLE_SESSION_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    /** append-only audit of every write and every reveal of personal data (JSON lines) */
    CONSOLE_AUDIT_FILE: z.string().min(1),
    ADMIN_TOKEN: z.string().min(1),
    INGEST_URL: z.url(),
    FULFILLMENT_URL: z.url(),
    SALES_URL: z.url(),
    PAYOUTS_URL: z.url(),
    KAFKA_BROKERS: z.string().min(1).transform((s) => s.split(',')),
    ...kafkaSecurityShape,
    SCHEMA_REGISTRY_URL: z.url(),
    TOPIC_NAMESPACE: z.string().default(''),
    LOG_LEVEL: z.string().default('info'),
  })
  .refine((c) => c.CONSOLE_OPERATOR_TOKEN !== c.CONSOLE_ADMIN_TOKEN, { message: 'the operator and admin credentials must differ', path: ['CONSOLE_ADMIN_TOKEN'] })
  .refine((c) => c.NODE_ENV !== 'production' || c.CONSOLE_SESSION_SECRET, { message: 'required in production', path: ['CONSOLE_SESSION_SECRET'] })
  .superRefine((c, ctx) => {
    for (const [name, message] of kafkaSecurityProblems(c, c.NODE_ENV)) ctx.addIssue({ code: 'custom', path: [name], message });
  });

export type ConsoleConfig = z.infer<typeof schema>;

export function loadConsoleConfig(env: Record<string, string | undefined> = process.env): ConsoleConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    // Names the variables only: values may be secrets.
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ');
    throw new Error(`console configuration is invalid: ${problems}`);
  }
  return parsed.data;
}
