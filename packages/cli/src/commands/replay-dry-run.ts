import type { Kafka } from 'kafkajs';
import type { EventCodec } from '@postsale/contracts';
import { adminClient } from '../admin-client';
import { readTopicToEnd, type TopicMessage } from '../kafka-tools';
import type { OperatorConfig } from '../operator-config';

/**
 * What a consumer's own inbox says about re-delivered messages: `held` of the `asked` event ids are already applied
 * (skipped on re-delivery); the rest (`asked − held`, plus `undecodable` messages, which are dead-lettered again) would
 * be processed. `error` when the service could not be asked.
 */
export interface InboxAnswer {
  service?: string;
  asked: number;
  held: number;
  undecodable: number;
  error?: string;
}

/** Asks each consuming service's `GET /admin/inbox/held` (the runtime's route) about event ids, per consumer group. */
export interface InboxProbe {
  codec: EventCodec;
  held(group: string, eventIds: string[]): Promise<{ service: string; held: number } | { error: string }>;
}

const SERVICES = ['ingest', 'fulfillment', 'sales', 'payouts'] as const;
/** Consumer groups are `[<namespace>.]<service>.<purpose>`. */
export function serviceOfGroup(group: string, namespace: string): (typeof SERVICES)[number] | undefined {
  const local = namespace && group.startsWith(`${namespace}.`) ? group.slice(namespace.length + 1) : group;
  return SERVICES.find((s) => local.split('.')[0] === s);
}

/** The probe the CLI and the console use: the operator's credential against the service that runs each group. */
export function serviceInboxProbe(config: OperatorConfig, codec: EventCodec): InboxProbe {
  const urls = { ingest: config.INGEST_URL, fulfillment: config.FULFILLMENT_URL, sales: config.SALES_URL, payouts: config.PAYOUTS_URL };
  return {
    codec,
    async held(group, eventIds) {
      const service = serviceOfGroup(group, config.TOPIC_NAMESPACE);
      if (!service) return { error: 'no service of ours runs this group' };
      const client = adminClient(urls[service], config.POSTSALE_ADMIN_TOKEN);
      let held = 0;
      for (let i = 0; i < eventIds.length; i += 100) {
        const r = await client.get<{ held: number }>('/admin/inbox/held', { params: { group, eventIds: eventIds.slice(i, i + 100).join(',') } }).catch((e: Error) => ({ status: 0, data: e.message }));
        if (r.status !== 200) return { error: `${service} answered ${r.status || String(r.data)}` };
        held += (r.data as { held: number }).held;
      }
      return { service, held };
    },
  };
}

export interface ReplayDryRunGroup {
  group: string;
  state: string;
  members: number;
  /** a replay moves the group's offsets, which Kafka allows only for a group without members */
  refused?: string;
  partitions: Array<{ partition: number; committed: string; target: string; end: string; redeliver: string; notYetConsumed: string }>;
  /** messages the group already consumed that it would receive again: its inbox skips them as already applied */
  redeliver: string;
  /** messages after the committed offset: delivered for the first time anyway (the group's lag) */
  notYetConsumed: string;
  /** asked of the consuming service: how many of the re-delivered events its inbox already holds (with a probe) */
  inbox?: InboxAnswer;
}

export interface ReplayDryRun {
  topic: string;
  from: string;
  groups: ReplayDryRunGroup[];
}

/**
 * What `replay --topic T --group G --from X` would do, without doing it: per consumer group of the topic (or the one
 * named), the offsets it would be moved to and how many messages would be delivered again. Consumers commit an offset
 * only after the event's effect and its id are committed in their inbox, so every re-delivered message (below the
 * committed offset) is one the inbox skips as already applied.
 */
export async function replayDryRun(kafka: Kafka, options: { topic: string; from: string; group?: string }, probe?: InboxProbe): Promise<ReplayDryRun> {
  const plan = await replayOffsets(kafka, options);
  if (!probe || plan.groups.every((g) => g.redeliver === '0')) return plan;
  // The re-delivered messages themselves, read once: their event ids are what each consumer's inbox is asked about.
  const messages = await readTopicToEnd(kafka, options.topic);
  for (const g of plan.groups) {
    if (g.redeliver === '0') continue;
    g.inbox = await askInbox(probe, g, messages.filter((m) => {
      const p = g.partitions.find((x) => x.partition === m.partition);
      const offset = BigInt(m.offset);
      return p !== undefined && offset >= BigInt(p.target) && offset < BigInt(p.target) + BigInt(p.redeliver);
    }));
  }
  return plan;
}

/** One line for an operator: what the consumer's inbox said about the re-delivered messages. */
export function describeInbox(inbox: InboxAnswer | undefined): string {
  if (!inbox) return 'nothing re-delivered';
  if (inbox.error) return `its inbox could not be asked: ${inbox.error}`;
  const parts = [`${inbox.service ?? 'its'} inbox holds ${inbox.held} of ${inbox.asked} event(s): skipped as already applied`];
  if (inbox.asked > inbox.held) parts.push(`${inbox.asked - inbox.held} applied anew`);
  if (inbox.undecodable) parts.push(`${inbox.undecodable} undecodable (dead-lettered again)`);
  return parts.join('; ');
}

async function askInbox(probe: InboxProbe, group: ReplayDryRunGroup, messages: TopicMessage[]): Promise<InboxAnswer> {
  const ids: string[] = [];
  let undecodable = 0;
  for (const m of messages) {
    const event = m.value ? await probe.codec.decode(m.value).catch(() => undefined) : undefined;
    if (event?.eventId) ids.push(event.eventId);
    else undecodable++;
  }
  const unique = [...new Set(ids)];
  const answer = unique.length ? await probe.held(group.group, unique) : { service: undefined, held: 0 };
  return 'error' in answer ? { asked: unique.length, held: 0, undecodable, error: answer.error } : { service: answer.service, asked: unique.length, held: answer.held, undecodable };
}

async function replayOffsets(kafka: Kafka, options: { topic: string; from: string; group?: string }): Promise<ReplayDryRun> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(options.topic);
    let targets: Map<number, bigint>;
    if (/^\d+$/.test(options.from)) {
      const from = BigInt(options.from);
      targets = new Map(ends.map((e) => [e.partition, from < BigInt(e.low) ? BigInt(e.low) : from > BigInt(e.high) ? BigInt(e.high) : from]));
    } else {
      const at = Date.parse(options.from);
      if (Number.isNaN(at)) throw new Error(`from must be an offset or an ISO timestamp, got ${options.from}`);
      const byTime = await admin.fetchTopicOffsetsByTimestamp(options.topic, at);
      targets = new Map(byTime.map((p) => [p.partition, BigInt(p.offset === '-1' ? ends.find((e) => e.partition === p.partition)!.high : p.offset)]));
    }
    const groupIds = options.group ? [options.group] : (await admin.listGroups()).groups.map((g) => g.groupId);
    const described = await admin.describeGroups(groupIds);
    const groups: ReplayDryRunGroup[] = [];
    for (const g of described.groups) {
      const [committed] = await admin.fetchOffsets({ groupId: g.groupId, topics: [options.topic] });
      const consumesTopic = committed?.partitions.some((p) => p.offset !== '-1');
      if (!consumesTopic && !options.group) continue;
      let redeliver = 0n;
      let notYet = 0n;
      const partitions = ends.map((e) => {
        const c = committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? '-1';
        const position = c === '-1' ? BigInt(e.low) : BigInt(c);
        const target = targets.get(e.partition) ?? BigInt(e.high);
        const again = position > target ? position - target : 0n;
        const lag = BigInt(e.high) - (target > position ? target : position);
        redeliver += again;
        notYet += lag > 0n ? lag : 0n;
        return { partition: e.partition, committed: c, target: String(target), end: e.high, redeliver: String(again), notYetConsumed: String(lag > 0n ? lag : 0n) };
      });
      groups.push({
        group: g.groupId, state: g.state, members: g.members.length, partitions, redeliver: String(redeliver), notYetConsumed: String(notYet),
        ...(g.members.length > 0 ? { refused: `group has ${g.members.length} active member(s): stop the service that runs it first` } : {}),
      });
    }
    return { topic: options.topic, from: options.from, groups };
  } finally {
    await admin.disconnect();
  }
}

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  committed: string;
  end: string;
  lag: string;
}

/** Lag per consumer group and partition (end offset minus committed offset; uncommitted partitions count from the start). */
export async function partitionLags(kafka: Kafka, topics: string[]): Promise<PartitionLag[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = new Map<string, Array<{ partition: number; low: string; high: string }>>();
    for (const topic of topics) ends.set(topic, await admin.fetchTopicOffsets(topic));
    const rows: PartitionLag[] = [];
    for (const { groupId } of (await admin.listGroups()).groups) {
      for (const t of await admin.fetchOffsets({ groupId, topics })) {
        if (t.partitions.every((p) => p.offset === '-1')) continue;
        for (const end of ends.get(t.topic) ?? []) {
          const committed = t.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1';
          const from = committed === '-1' ? BigInt(end.low) : BigInt(committed);
          rows.push({ group: groupId, topic: t.topic, partition: end.partition, committed, end: end.high, lag: String(BigInt(end.high) - from) });
        }
      }
    }
    return rows.sort((a, b) => a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic) || a.partition - b.partition);
  } finally {
    await admin.disconnect();
  }
}

export interface RedriveDryRun {
  letter: string;
  /** the message goes back to this topic and partition (same key) */
  topic: string;
  partition: string;
  groups: Array<{ group: string; outcome: 'tries again' | 'skips (already applied)' | 'receives it for the first time'; inbox?: 'holds it' | 'does not hold it' | string }>;
}

/**
 * What redriving a dead letter would do, without doing it: it is republished to its original topic (same key, so the
 * same partition); the group that dead-lettered it processes it again; every other group of the topic whose committed
 * offset is past the original message already applied it, and its inbox skips the copy.
 */
export async function redriveDryRun(
  kafka: Kafka,
  letter: { id: string; originalTopic: string; originalPartition: string; originalOffset: string; group: string; message?: { value: Buffer | null } },
  probe?: InboxProbe,
): Promise<RedriveDryRun> {
  const plan = await redriveByOffsets(kafka, letter);
  // With a probe and a decodable letter, each group's own inbox says whether it already applied the event.
  const event = probe && letter.message?.value ? await probe.codec.decode(letter.message.value).catch(() => undefined) : undefined;
  if (!probe || !event?.eventId) return plan;
  for (const g of plan.groups) {
    const answer = await probe.held(g.group, [event.eventId]);
    if ('error' in answer) {
      g.inbox = `not asked: ${answer.error}`;
      continue;
    }
    g.inbox = answer.held > 0 ? 'holds it' : 'does not hold it';
    g.outcome = answer.held > 0 ? 'skips (already applied)' : g.group === letter.group ? 'tries again' : 'receives it for the first time';
  }
  return plan;
}

async function redriveByOffsets(kafka: Kafka, letter: { id: string; originalTopic: string; originalPartition: string; originalOffset: string; group: string }): Promise<RedriveDryRun> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const groups: RedriveDryRun['groups'] = [];
    for (const { groupId } of (await admin.listGroups()).groups) {
      const [t] = await admin.fetchOffsets({ groupId, topics: [letter.originalTopic] });
      const committed = t?.partitions.find((p) => String(p.partition) === letter.originalPartition)?.offset ?? '-1';
      if (t?.partitions.every((p) => p.offset === '-1') && groupId !== letter.group) continue;
      const past = committed !== '-1' && BigInt(committed) > BigInt(letter.originalOffset || '0');
      groups.push({ group: groupId, outcome: groupId === letter.group ? 'tries again' : past ? 'skips (already applied)' : 'receives it for the first time' });
    }
    return { letter: letter.id, topic: letter.originalTopic, partition: letter.originalPartition, groups: groups.sort((a, b) => a.group.localeCompare(b.group)) };
  } finally {
    await admin.disconnect();
  }
}
