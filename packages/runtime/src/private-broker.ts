import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { localKafkaCredentials } from './config';
import { kafkaClientSecurity } from './kafka';
import { waitFor } from './testing';
import { freePort } from './free-port';

/**
 * Test helper for fault tests (a broker of their own to kill and restart).
 * A private single-node KRaft broker for fault tests, run from the same jars as `deploy/local/infra.sh`, on free ports
 * with its own data directory, so a test can kill -9 and restart it without touching the shared broker on 9092.
 */
export interface PrivateBroker {
  brokers: string[];
  /**
   * The KAFKA_* variables a client needs for this broker: KAFKA_BROKERS and the SASL ones (its listener is
   * SASL_PLAINTEXT with SCRAM-SHA-512, the user created when the storage was formatted).
   */
  env: Record<string, string>;
  kill9(): Promise<void>;
  /** starts the broker again on the same ports and data directory, and waits until it serves metadata */
  restart(): Promise<void>;
  stop(): Promise<void>;
  logTail(): string;
}

const repoRoot = resolve(__dirname, '../../..');

/** The unpacked Kafka release's libs directory; fails with what to do when it is missing. */
export function kafkaLibs(): string {
  const pom = readFileSync(join(repoRoot, 'deploy/local/pom.xml'), 'utf8');
  const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
  if (!version) throw new Error('deploy/local/pom.xml names no kafka.version');
  const candidates = [process.env.KAFKA_LIBS, join(repoRoot, `.local/infra/kafka-${version}/libs`)].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(join(p, `kafka_2.13-${version}.jar`)));
  if (!found) {
    throw new Error(`Kafka ${version} jars not found (looked in ${candidates.join(', ')}): run \`npm run infra:up\` once, which unpacks them into .local/infra, or set KAFKA_LIBS`);
  }
  return found;
}

/**
 * Like the local stack's broker, its only client listener is SASL_PLAINTEXT with SCRAM-SHA-512, by default with the same
 * dev user (deploy/local/kafka-dev.env), so a test's environment from testEnv() works against it after setting
 * KAFKA_BROKERS; `sasl` gives it another user.
 */
export async function startPrivateBroker(options: { startTimeoutMs?: number; sasl?: { username: string; password: string } } = {}): Promise<PrivateBroker> {
  const dev = localKafkaCredentials();
  const sasl = options.sasl ?? (dev.KAFKA_SASL_USERNAME && dev.KAFKA_SASL_PASSWORD ? { username: dev.KAFKA_SASL_USERNAME, password: dev.KAFKA_SASL_PASSWORD } : undefined);
  if (sasl && !/^[A-Za-z0-9_.-]+$/.test(sasl.username + sasl.password)) throw new Error('private broker SASL credentials: letters, digits, _ . - only');
  const libs = kafkaLibs();
  const classpath = `${libs}/*`;
  const [port, controllerPort] = [await freePort(), await freePort()];
  const tmpRoot = join(repoRoot, '.local/tmp');
  mkdirSync(tmpRoot, { recursive: true });
  const dir = mkdtempSync(join(tmpRoot, 'kafka-fault-'));
  const conf = join(dir, 'server.properties');
  const logFile = join(dir, 'broker.out');
  const listener = sasl ? 'SASL_PLAINTEXT' : 'PLAINTEXT';
  writeFileSync(conf, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=${listener}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=${listener}://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=${listener}:${listener},CONTROLLER:PLAINTEXT`,
    `inter.broker.listener.name=${listener}`,
    ...(sasl ? [
      'sasl.enabled.mechanisms=SCRAM-SHA-512',
      'sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512',
      `listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${sasl.username}" password="${sasl.password}";`,
    ] : []),
    `log.dirs=${join(dir, 'data')}`,
    'auto.create.topics.enable=false',
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    '',
  ].join('\n'));

  const java = (args: string[], out: NodeJS.WritableStream) => {
    const child = spawn('java', ['-Xms128m', '-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1',
      `-Dlog4j.configuration=file:${join(repoRoot, 'deploy/local/log4j.properties')}`, `-Dkafka.logs.dir=${dir}`,
      '-cp', classpath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    return child;
  };
  const exited = (child: ChildProcess) =>
    new Promise<number | null>((r) => (child.exitCode !== null || child.signalCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

  const log = createWriteStream(logFile, { flags: 'a' });
  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url'); // as Kafka's own Uuid does: not an option
  // SCRAM users live in the cluster metadata; KRaft creates them when the storage is formatted (--add-scram).
  const scram = sasl ? ['--add-scram', `SCRAM-SHA-512=[name=${sasl.username},password=${sasl.password}]`] : [];
  const format = java(['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', conf, ...scram], log);
  if ((await exited(format)) !== 0) {
    const output = readFileSync(logFile, 'utf8').slice(-2000);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`formatting Kafka storage failed:\n${output}`);
  }

  const brokers = [`127.0.0.1:${port}`];
  const env: Record<string, string> = {
    KAFKA_BROKERS: brokers.join(','),
    ...(sasl ? { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: sasl.username, KAFKA_SASL_PASSWORD: sasl.password } : {}),
  };
  const probe = new Kafka({ clientId: 'broker-probe', brokers, ...kafkaClientSecurity(env), logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 500 });
  let child: ChildProcess | undefined;

  // A broker must not outlive the test process, even when jest exits without running afterAll.
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  const start = async () => {
    child = java(['kafka.Kafka', conf], log);
    const current = child;
    await waitFor(async () => {
      if (current.exitCode !== null) throw new Error(`broker exited with ${current.exitCode}`);
      const admin = probe.admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return cluster.brokers.length > 0;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }, { timeoutMs: options.startTimeoutMs ?? 45_000, intervalMs: 200, description: `private Kafka broker on ${brokers[0]}` }).catch((error: Error) => {
      throw new Error(`${error.message}\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    });
  };
  const kill9 = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const done = exited(child);
    child.kill('SIGKILL');
    await done;
  };

  try {
    await start();
  } catch (error) {
    await kill9();
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    brokers,
    env,
    kill9,
    restart: start,
    async stop() {
      await kill9();
      process.off('exit', killOnExit);
      log.end();
      rmSync(dir, { recursive: true, force: true });
    },
    logTail: () => readFileSync(logFile, 'utf8').slice(-3000),
  };
}
