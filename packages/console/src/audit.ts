import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { OperatorAction } from '@postsale/cli';

/** One recorded operator action: who, what, on which order, why, and what the service said before and after. */
export interface AuditEntry extends OperatorAction {
  role: string;
  target?: string;
  before?: unknown;
  after?: unknown;
}

/**
 * The console's audit log: append-only JSON lines. Every write and every reveal of personal data lands here before
 * the answer goes back to the browser; the order's timeline shows its entries. Never holds personal data itself
 * (reveals record the reason, not what was shown).
 */
export class AuditLog {
  constructor(private readonly file: string) {}

  async record(entry: Omit<AuditEntry, 'at'>): Promise<AuditEntry> {
    const full: AuditEntry = { at: new Date().toISOString(), ...entry };
    await mkdir(dirname(this.file), { recursive: true });
    await appendFile(this.file, `${JSON.stringify(full)}\n`, { mode: 0o600 });
    return full;
  }

  /** Newest first. */
  async list(limit = 500): Promise<AuditEntry[]> {
    const text = await readFile(this.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const entries: AuditEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        entries.push(JSON.parse(line) as AuditEntry);
      } catch {
        // a torn last line after a crash: skip it, keep the rest
      }
    }
    return entries.reverse().slice(0, limit);
  }

  async forOrder(orderId: string): Promise<AuditEntry[]> {
    return (await this.list(100_000)).filter((e) => e.orderId === orderId).reverse();
  }
}
