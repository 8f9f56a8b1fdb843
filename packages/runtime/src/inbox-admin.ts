import type { Express } from 'express';
import { z } from 'zod';
import type { Db } from './db';
import { validate } from './http';
import { requireRoles } from './roles';

/** Event ids one `GET /admin/inbox/held` may ask about (keeps the URL well under header limits). */
export const INBOX_HELD_MAX_IDS = 100;

export interface InboxHeld {
  group: string;
  /** how many distinct event ids were asked about */
  asked: number;
  /** how many of them the group's inbox holds: a replay or redrive re-delivering them is skipped as already applied */
  held: number;
}

/** How many of `eventIds` the inbox of `group` holds (one indexed lookup on the inbox's primary key). */
export async function countInboxHeld(db: Db, group: string, eventIds: string[]): Promise<InboxHeld> {
  const ids = [...new Set(eventIds)];
  if (ids.length === 0) return { group, asked: 0, held: 0 };
  const row = await db('inbox').where({ consumer_group: group }).whereIn('event_id', ids).count({ n: '*' }).first();
  return { group, asked: ids.length, held: Number(row?.n ?? 0) };
}

const query = z.object({
  group: z.string().regex(/^[\w.:-]{1,200}$/, 'a consumer group id'),
  eventIds: z.string().min(1).max(INBOX_HELD_MAX_IDS * 65)
    .transform((s) => s.split(','))
    .pipe(z.array(z.string().regex(/^[\w-]{1,64}$/, 'an event id')).min(1).max(INBOX_HELD_MAX_IDS)),
}).strict();

/**
 * `GET /admin/inbox/held?group=G&eventIds=a,b,…` on every service (mounted by startService): how many of those events
 * the service's inbox already holds for group G, so a replay or redrive dry run can say what each consumer would skip
 * as already applied, asked of the consumer itself rather than inferred from committed offsets. A read: both roles.
 */
export function inboxAdminRoutes(db: Db, tokens: { admin: string; operator?: string | undefined }): (app: Express) => void {
  return (app) => {
    app.get('/admin/inbox/held', requireRoles(tokens), async (req, res) => {
      const q = validate(query, req.query, 'INVALID_QUERY');
      res.json(await countInboxHeld(db, q.group, q.eventIds));
    });
  };
}
