/**
 * `postsale`: the operator's CLI. Reads the pipeline's addresses and the operator credential from the environment
 * (or .local/stack/operator.env written by `npm start`).
 */
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { EventCodec } from '@postsale/contracts';
import { createKafka, createLogger } from '@postsale/runtime';
import { OperatorAuthError, requireAdminCredential } from './admin-client';
import { listDeadLetters, describeDeadLetter, redrive } from './commands/dlq';
import { integrityReport, printIntegrity } from './commands/integrity';
import { DEFAULT_HANDOFF_DEADLINES, streamIntegrity } from './commands/stream-integrity';
import { findOrderIds, orderJourney, orderKafkaRecords } from './commands/orders';
import { buildTimeline, formatTimeline } from './timeline';
import { replay, waitForReplay } from './commands/replay';
import { describeInbox, redriveDryRun, replayDryRun, serviceInboxProbe } from './commands/replay-dry-run';
import { describeTopics } from './commands/topics';
import { loadOperatorConfig } from './operator-config';

const config = loadOperatorConfig();
const kafka = () => createKafka({ clientId: 'postsale-cli', brokers: config.KAFKA_BROKERS, logger: createLogger('postsale-cli', 'error'), security: config });
/** replay, dlq and topics act on Kafka directly: only with the admin credential (checked with ingest first). */
const asAdmin = () => requireAdminCredential(config.INGEST_URL, config.POSTSALE_ADMIN_TOKEN);
const json = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);

const program = new Command('postsale').description('Operate the post-sale pipeline');

program
  .command('orders')
  .description('orders across every service')
  .command('show <orderId>')
  .description("the order's journey across every service as one timeline (our id, or a marketplace order id)")
  .option('--json', 'the timeline as data')
  .option('--raw', "the timeline as data plus each service's full answer, stored deliveries included")
  .option('--kafka', "also each of the order's records in the topics (topic, partition, offset); reads the topics")
  .action(async (query: string, options: { json?: boolean; raw?: boolean; kafka?: boolean }) => {
    const [orderId, ...others] = await findOrderIds(config, query);
    if (!orderId) throw new Error(`no service knows an order ${query} (tried our id, marketplace order ids, PayPal payout ids)`);
    if (others.length > 0) console.error(`several orders match ${query}: ${[orderId, ...others].join(', ')}; showing ${orderId}`);
    const journey = await orderJourney(config, orderId);
    const records = options.kafka ? await orderKafkaRecords(kafka(), EventCodec.connect(config.SCHEMA_REGISTRY_URL, config.TOPIC_NAMESPACE), config.TOPIC_NAMESPACE, orderId) : [];
    const timeline = buildTimeline(orderId, journey, { kafka: records });
    if (options.json || options.raw) console.log(json(options.raw ? { ...timeline, raw: journey } : timeline));
    else console.log(formatTimeline(timeline));
  });

program
  .command('integrity')
  .description('every order not in a terminal state past its deadline, per stage; exits 1 when there are any')
  .option('--since <iso>', 'only orders stuck since this time')
  .option('--json', 'machine-readable output')
  .option('--purchase-deadline <seconds>', 'received → purchase hand-off deadline', String(DEFAULT_HANDOFF_DEADLINES.purchaseSeconds))
  .option('--sale-deadline <seconds>', 'purchased → sale hand-off deadline', String(DEFAULT_HANDOFF_DEADLINES.saleSeconds))
  .action(async (options: { since?: string; json?: boolean; purchaseDeadline: string; saleDeadline: string }) => {
    const since = options.since ? new Date(options.since) : undefined;
    const reports = [
      ...(await integrityReport(config, { since })),
      ...(await streamIntegrity(kafka(), EventCodec.connect(config.SCHEMA_REGISTRY_URL, config.TOPIC_NAMESPACE), {
        purchaseSeconds: Number(options.purchaseDeadline),
        saleSeconds: Number(options.saleDeadline),
      })).map((r) => ({ ...r, violations: since ? r.violations.filter((v) => new Date(v.since) >= since) : r.violations })),
    ];
    const problems = options.json ? reports.reduce((n, r) => n + r.violations.length + (r.error ? 1 : 0), 0) : printIntegrity(reports);
    if (options.json) console.log(json(reports));
    process.exitCode = problems > 0 ? 1 : 0;
  });

program
  .command('replay')
  .description('re-drive a consumer group from an offset or a time (stop the service running the group first)')
  .requiredOption('--topic <topic>')
  .requiredOption('--group <group>')
  .requiredOption('--from <offset|timestamp>')
  .option('--wait', 'then show progress until the group has caught up')
  .option('--dry-run', 'move nothing: say how many messages would be re-delivered (and skipped by the inbox), and whether the group has members')
  .action(async (options: { topic: string; group: string; from: string; wait?: boolean; dryRun?: boolean }) => {
    await asAdmin();
    const k = kafka();
    if (options.dryRun) {
      const plan = await replayDryRun(k, options, serviceInboxProbe(config, EventCodec.connect(config.SCHEMA_REGISTRY_URL, config.TOPIC_NAMESPACE)));
      for (const g of plan.groups) {
        console.log(`group ${g.group}: would re-deliver ${g.redeliver} message(s) (${describeInbox(g.inbox)}), ${g.notYetConsumed} not yet consumed; ${g.refused ? `refused now: ${g.refused}` : 'no members: a replay may run'}`);
        for (const p of g.partitions) console.log(`    p${p.partition}: committed ${p.committed} → ${p.target} (end ${p.end})`);
      }
      return;
    }
    const plan = await replay(k, options);
    console.log(`group ${plan.group} on ${plan.topic} now at ${plan.partitions.map((p) => `p${p.partition}@${p.offset}`).join(' ')}`);
    if (!options.wait) return;
    console.log('start the service that runs this group; waiting for it to catch up…');
    let bar: SingleBar | undefined;
    let total = 0;
    await waitForReplay(k, {
      topic: options.topic,
      group: options.group,
      onProgress: (lag) => {
        const n = Number(lag);
        if (!bar) {
          total = Math.max(n, 1);
          bar = new SingleBar({ format: 'replay |{bar}| {value}/{total} messages' }, Presets.shades_classic);
          bar.start(total, 0);
        }
        bar.update(Math.max(0, total - n));
      },
    });
    bar?.update(total);
    bar?.stop();
  });

const dlq = program.command('dlq').description('dead-lettered messages');
dlq
  .command('list')
  .option('--all', 'include redriven ones')
  .action(async (options: { all?: boolean }) => {
    await asAdmin();
    const letters = (await listDeadLetters(kafka(), config.TOPIC_NAMESPACE)).filter((l) => options.all || !l.redriven);
    if (letters.length === 0) console.log('no dead letters');
    for (const l of letters) {
      console.log(`${l.id}  ${l.code}  group ${l.group}  from ${l.originalTopic}@${l.originalPartition}:${l.originalOffset}  ${l.failedAt}${l.redriven ? '  (redriven)' : ''}\n    ${l.reason}`);
    }
  });
dlq.command('show <id>').action(async (id: string) => {
  await asAdmin();
  const letter = (await listDeadLetters(kafka(), config.TOPIC_NAMESPACE)).find((l) => l.id === id);
  if (!letter) throw new Error(`no dead letter ${id}`);
  const event = await describeDeadLetter(letter, EventCodec.connect(config.SCHEMA_REGISTRY_URL, config.TOPIC_NAMESPACE));
  console.log(json({ ...letter, message: { ...letter.message, value: undefined }, event }));
});
dlq
  .command('redrive [id]')
  .option('--all', 'every dead letter not yet redriven')
  .option('--dry-run', 'publish nothing: say which consumer group would try each letter again and which would skip it')
  .action(async (id: string | undefined, options: { all?: boolean; dryRun?: boolean }) => {
    await asAdmin();
    if (!id && !options.all) throw new Error('name a dead letter id or use --all');
    const k = kafka();
    const letters = (await listDeadLetters(k, config.TOPIC_NAMESPACE)).filter((l) => (options.all && !l.redriven) || l.id === id);
    if (letters.length === 0) throw new Error(`no dead letter ${id}`);
    if (options.dryRun) {
      for (const letter of letters) {
        const plan = await redriveDryRun(k, letter, serviceInboxProbe(config, EventCodec.connect(config.SCHEMA_REGISTRY_URL, config.TOPIC_NAMESPACE)));
        console.log(`${plan.letter} → ${plan.topic} p${plan.partition}: ${plan.groups.map((g) => `${g.group} ${g.outcome}${g.inbox ? ` (its inbox ${g.inbox})` : ''}`).join('; ')}`);
      }
      return;
    }
    console.log(`redrove ${await redrive(k, letters)} message(s)`);
  });

program
  .command('topics')
  .description('topics, partitions, message counts and consumer group lag')
  .action(async () => {
    await asAdmin();
    for (const t of await describeTopics(kafka(), config.TOPIC_NAMESPACE)) {
      console.log(`${t.topic}  partitions ${t.partitions}  messages ${t.messages}`);
      for (const g of t.groups) console.log(`    group ${g.group}  lag ${g.lag}  (${g.state})`);
    }
  });

program.parseAsync().catch((error: unknown) => {
  console.error(error instanceof OperatorAuthError ? `not authorised: ${error.message}` : `postsale: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = error instanceof OperatorAuthError ? 3 : 2;
});
