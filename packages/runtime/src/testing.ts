import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Kafka } from 'kafkajs';
import knex, { type Knex } from 'knex';
import type { EventCodec, TypedEvent } from '@postsale/contracts';
import { localInfraEnv } from './config';
import type { RunningService } from './service';
import { testNamespace } from './test-topics';

/**
 * Events a running service has put through its outbox since it started: those its relay published (published rows are
 * deleted, so only its counter remembers them) plus the rows still waiting to be published. Stream events only: records of the
 * subject-keys topic (crypto-shredding) are not events.
 */
export async function outboxEventCount(service: Pick<RunningService, 'ctx' | 'relay'>): Promise<number> {
  const keysTopic = service.ctx.codec.subjectKeysTopic();
  const published = async () => {
    const { values } = await service.ctx.metrics.registry.getSingleMetric('outbox_events_published_total')!.get();
    return values.filter((v) => v.labels.topic !== keysTopic).reduce((sum, v) => sum + v.value, 0);
  };
  // Published rows stay until the relay deletes them together (they are counted once, as published). Read between
  // drains, or a batch would be missed or counted twice.
  const { n } = await waitFor(async () => {
    if (service.relay.busy) return undefined;
    const before = await published();
    const awaitingDeletion = [...service.relay.awaitingDeletion];
    const [waiting] = await service.ctx.db('outbox').whereNot({ topic: keysTopic }).whereRaw('id <> all(?::bigint[])', [awaitingDeletion])
      .count<{ n: string }[]>('* as n');
    if (service.relay.busy || (await published()) !== before) return undefined;
    return { n: before + Number(waiting!.n) }; // wrapped: 0 is an answer, not "not yet"
  }, { description: 'the outbox between two relay drains', intervalMs: 5 });
  return n;
}

/**
 * `@postsale/runtime/testing`: helpers for integration tests on the real infrastructure, a separate entry point that
 * production code never imports. Every test gets its own topic namespace (so its own topics, consumer groups and
 * registry subjects) and its own database schema.
 */
export function uniqueId(prefix: string): string {
  return `${prefix}${randomUUID().replace(/-/g, '').slice(0, 10)}`;
}

/**
 * A service's environment for one test: the local stack (its addresses and Kafka credentials, see localInfraEnv), a
 * unique DB schema and a unique topic namespace whose topics are deleted when the test file ends.
 */
export function testEnv(service: string, overrides: Record<string, string> = {}): Record<string, string> {
  const infra = { ...localInfraEnv(), ...overrides }; // the broker the namespace's topics will live on
  return {
    ...localInfraEnv(),
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    DB_SCHEMA: uniqueId(`t_${service}_`),
    TOPIC_NAMESPACE: overrides.TOPIC_NAMESPACE ?? testNamespace(infra),
    ADMIN_TOKEN: 'test-admin-token-0123456789',
    ...overrides,
  };
}

/** Drops a test's schema. */
export async function dropSchema(schema: string, databaseUrl = localInfraEnv().DATABASE_URL!): Promise<void> {
  const db = knex({ client: 'pg', connection: databaseUrl });
  try {
    await db.raw('drop schema if exists ?? cascade', [schema]);
  } finally {
    await db.destroy();
  }
}

/** A statement as knex sent it: its text (pg's $n placeholders, in order) and its bindings. */
export interface SentStatement {
  sql: string;
  bindings: readonly unknown[];
}

/** What `work` sent to Postgres through `db`, as sent (knex's query events), BEGIN, COMMIT and ROLLBACK left out. */
export async function statementsSentBy<T>(db: Knex, work: () => Promise<T>): Promise<{ result: T; statements: SentStatement[] }> {
  const statements: SentStatement[] = [];
  const capture = (q: { sql: string; bindings?: readonly unknown[] }) => {
    if (!/^(begin|commit|rollback)\b/i.test(q.sql)) statements.push({ sql: q.sql, bindings: q.bindings ?? [] });
  };
  db.on('query', capture);
  try {
    return { result: await work(), statements };
  } finally {
    db.off('query', capture);
  }
}

/** The EXPLAIN (FORMAT JSON) fields the plan tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/**
 * The plan of a statement as it was sent, explained with its own bindings (`analyze`: run, with actual rows), every
 * node in one list. `q` may be a transaction that set planner options first.
 */
export async function planOfSent(q: Knex, statement: SentStatement, options: { analyze?: boolean } = {}): Promise<PlanNode[]> {
  const explained = await q.raw(`explain (${options.analyze ? 'analyze, ' : ''}format json) ${statement.sql.replace(/\$\d+/g, '?')}`, statement.bindings as never);
  const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
  return nodes(explained.rows[0]['QUERY PLAN'][0].Plan as PlanNode);
}

/** Polls until `condition` returns a truthy value or the deadline passes; never a fixed sleep. */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  options: { timeoutMs?: number; intervalMs?: number; description?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out waiting for ${options.description ?? 'condition'}${why}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

export interface CollectedMessage<E> {
  event: E;
  key: string | undefined;
  partition: number;
  offset: string;
  headers: Record<string, string>;
}

/** Reads a topic from the beginning into an array, for assertions on what a service published. */
export async function collectTopic<E extends TypedEvent = TypedEvent>(
  kafka: Kafka,
  codec: EventCodec | undefined,
  topic: string,
  /** called as each event is decoded, for a reader that must know when it arrived (the benchmark's latencies) */
  onEvent?: (message: CollectedMessage<E>) => void,
): Promise<{ messages: Array<CollectedMessage<E>>; raw: Array<{ value: Buffer | null; headers: Record<string, string> }>; stop(): Promise<void> }> {
  const consumer = kafka.consumer({ groupId: uniqueId('test-collector-') });
  const messages: Array<CollectedMessage<E>> = [];
  const raw: Array<{ value: Buffer | null; headers: Record<string, string> }> = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      raw.push({ value: message.value, headers });
      if (codec && message.value) {
        try {
          const collected: CollectedMessage<E> = { event: await codec.decode<E>(message.value), key: message.key?.toString(), partition, offset: message.offset, headers };
          messages.push(collected);
          onEvent?.(collected);
        } catch {
          /* undecodable messages stay visible in `raw` */
        }
      }
    },
  });
  return { messages, raw, stop: () => consumer.disconnect() };
}

/**
 * A loopback TCP proxy in front of a real server, for outage tests: `cut()` stops accepting (connections are refused)
 * and destroys every open connection mid-stream; `restore()` listens again on the same port. `watchClient`, when given,
 * is called for each accepted connection and returns what sees the bytes the client sends on it (e.g. a protocol
 * reader counting messages).
 */
export interface TcpProxy {
  port: number;
  /** connections accepted so far (proves traffic really goes through the proxy) */
  readonly accepted: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(
  target: { host: string; port: number }, options: { watchClient?: () => (chunk: Buffer) => void } = {},
): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined); // a cut or reset is the point; both ends are destroyed below
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    if (options.watchClient) client.on('data', options.watchClient());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    cut: stopListening,
    restore: () => listen(port),
    close: stopListening,
  };
}

/**
 * A real-part test needs a program from the machine (Chromium, Prometheus): when it is missing the test fails here,
 * naming what is missing and how to install it, instead of timing out or skipping. `npm test` installs both.
 */
export function requireSystemProgram(program: string, debianPackage: string): string {
  const found = spawnSync('sh', ['-c', `command -v "${program}"`], { encoding: 'utf8' });
  const path = found.status === 0 ? found.stdout.trim() : '';
  if (!path) {
    throw new Error(`${program} is not installed: this test needs the real one. Install it with: sudo apt-get install -y ${debianPackage} (npm test does this itself when run as root)`);
  }
  return path;
}

export * from './private-broker';
export * from './test-topics';
