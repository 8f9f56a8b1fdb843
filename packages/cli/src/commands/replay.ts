import type { Kafka } from 'kafkajs';
import { groupLags } from '../kafka-tools';

export interface ReplayPlan {
  topic: string;
  group: string;
  partitions: Array<{ partition: number; offset: string }>;
}

/**
 * Moves a consumer group's committed offsets back to an offset or a point in time. Kafka only lets an EMPTY group be
 * repositioned, so the service running the group must be stopped first; when it restarts it re-drives from there.
 * Safe by construction: consumers record processed event ids, so replayed events change nothing already applied.
 */
export async function replay(
  kafka: Kafka,
  options: { topic: string; group: string; from: string; emptyTimeoutMs?: number },
): Promise<ReplayPlan> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // A consumer that died without leaving stays a member until its session times out (10 s): wait for that.
    const deadline = Date.now() + (options.emptyTimeoutMs ?? 45_000);
    for (;;) {
      const { groups } = await admin.describeGroups([options.group]);
      const members = groups[0]?.members.length ?? 0;
      if (members === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`consumer group ${options.group} has ${members} active member(s): stop the service that runs it, then replay`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    const ends = await admin.fetchTopicOffsets(options.topic);
    let partitions: ReplayPlan['partitions'];
    if (/^\d+$/.test(options.from)) {
      const from = BigInt(options.from);
      partitions = ends.map((e) => ({
        partition: e.partition,
        offset: String(from < BigInt(e.low) ? BigInt(e.low) : from > BigInt(e.high) ? BigInt(e.high) : from),
      }));
    } else {
      const at = Date.parse(options.from);
      if (Number.isNaN(at)) throw new Error(`--from must be an offset or an ISO timestamp, got ${options.from}`);
      const byTime = await admin.fetchTopicOffsetsByTimestamp(options.topic, at);
      partitions = byTime.map((p) => ({ partition: p.partition, offset: p.offset === '-1' ? ends.find((e) => e.partition === p.partition)!.high : p.offset }));
    }
    await admin.setOffsets({ groupId: options.group, topic: options.topic, partitions });
    return { topic: options.topic, group: options.group, partitions };
  } finally {
    await admin.disconnect();
  }
}

/** Waits until the group has consumed the topic to its end, reporting progress; returns when lag is zero. */
export async function waitForReplay(
  kafka: Kafka,
  options: { topic: string; group: string; timeoutMs?: number; onProgress?: (lag: bigint) => void },
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
  for (;;) {
    const lag = (await groupLags(kafka, [options.topic])).find((l) => l.group === options.group)?.lag ?? 0n;
    options.onProgress?.(lag);
    if (lag === 0n) return;
    if (Date.now() > deadline) throw new Error(`group ${options.group} still has ${lag} message(s) to replay`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
