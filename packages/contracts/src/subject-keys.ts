import { loadSchema, type AvroSchema } from './schemas';

/**
 * The compacted topic of data-subject keys (crypto-shredding of personal data in events). Not an event stream: its
 * key is the subject id, not an order id, and a subject's last record is all that matters (its key, or that it was
 * erased). Ingest writes it through its outbox; every service that reads personal data keeps its own copy.
 */
export const SubjectKeys = {
  stream: 'subject-keys',
  baseName: 'postsale.subject-keys.v1',
  producer: 'ingest',
  partitions: 6,
  schemaFile: 'subject-keys.v1.avsc',
  schema: loadSchema('subject-keys.v1.avsc') as AvroSchema,
  /**
   * Compaction drops a superseded key (an erased subject's) from the log: a segment rolls within `segment.ms` and is
   * compacted within `max.compaction.lag.ms` of the erasure. Nothing else is deleted (no retention), so a reader from
   * the earliest offset always finds every live key and every erasure.
   */
  topicConfig: {
    'cleanup.policy': 'compact',
    'segment.ms': String(3600_000),
    'max.compaction.lag.ms': String(24 * 3600_000),
    'min.cleanable.dirty.ratio': '0.01',
  } as Record<string, string>,
} as const;

export function subjectKeysTopic(namespace = ''): string {
  return namespace ? `${namespace}.${SubjectKeys.baseName}` : SubjectKeys.baseName;
}
