import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { localInfraEnv } from './config';
import { kafkaClientSecurity } from './kafka';

/**
 * Test helper: a test namespace's topics are deleted when the test is done with them. Every namespace costs the broker
 * its partitions' open files; kept forever, a few full `npm test` runs exhaust the machine's open-file limit.
 */

/** Deletes every topic of a test namespace (`<namespace>.…`, DLQs included) from the broker `env` names. */
export async function deleteNamespaceTopics(namespace: string, env: Record<string, string | undefined> = localInfraEnv()): Promise<string[]> {
  // never '' (a deployment's topics have no namespace) and never a pattern
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(namespace)) throw new Error(`not a test namespace: "${namespace}"`);
  const brokers = (env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  const kafka = new Kafka({ clientId: 'test-topic-clean-up', brokers, ...kafkaClientSecurity(env), logLevel: logLevel.NOTHING, retry: { retries: 2 } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${namespace}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    return topics;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Where the test environment (tools/jest-environment.js) collects what to do once a test file's tests and afterAll
 * hooks are done: a file's services are stopped by then, so nothing uses its topics any more.
 */
const WHEN_FILE_ENDS = '__postsaleWhenFileEnds';

/**
 * Deletes the namespace's topics from the local stack's broker when the test file ends. Namespaces on a private broker
 * need nothing: their topics go with its data directory. Outside that environment (a script) it does nothing; call
 * deleteNamespaceTopics yourself.
 */
export function deleteTopicsWhenFileEnds(namespace: string, env: Record<string, string | undefined> = localInfraEnv()): void {
  const tasks = (globalThis as Record<string, unknown>)[WHEN_FILE_ENDS];
  if (!Array.isArray(tasks) || env.KAFKA_BROKERS !== localInfraEnv().KAFKA_BROKERS) return;
  tasks.push(() => deleteNamespaceTopics(namespace, env));
}

/** A unique topic namespace for a test (`t-…`), whose topics are deleted when the test file ends. */
export function testNamespace(env: Record<string, string | undefined> = localInfraEnv()): string {
  const namespace = `t-${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  deleteTopicsWhenFileEnds(namespace, env);
  return namespace;
}
