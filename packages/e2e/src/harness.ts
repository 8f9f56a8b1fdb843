import axios, { type AxiosInstance } from 'axios';
import { EventCodec } from '@postsale/contracts';
import { freePort, newCredentialsKey, SERVICES, startPipeline, type Pipeline, type PipelineOptions, REPO_ROOT, type OperatorConfig } from '@postsale/cli';
import { createKafka, createLogger, kafkaSecuritySchema, localInfraEnv } from '@postsale/runtime';
import { deleteNamespaceTopics, dropSchema, uniqueId } from '@postsale/runtime/testing';
import { join } from 'node:path';

export interface E2E {
  pipeline: Pipeline;
  namespace: string;
  admin: Record<(typeof SERVICES)[number], AxiosInstance>;
  operator: OperatorConfig;
  kafka: ReturnType<typeof createKafka>;
  codec: EventCodec;
  stop(): Promise<void>;
}

/** A whole pipeline for one test file: unique topics, consumer groups, registry subjects and DB schemas. */
export async function startE2E(overrides: Partial<PipelineOptions> = {}): Promise<E2E> {
  const id = uniqueId('');
  const namespace = `e2e-${id}`;
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()]))) as PipelineOptions['ports'];
  const adminToken = `e2e-admin-token-${id}`;
  const pipeline = await startPipeline({
    namespace,
    schemaSuffix: `_e2e_${id}`,
    ports,
    adminToken,
    credentialsKeys: { ingest: newCredentialsKey(), fulfillment: newCredentialsKey() },
    logDir: join(REPO_ROOT, '.local', 'logs', namespace),
    fast: true,
    ...overrides,
  });
  const admin = Object.fromEntries(
    SERVICES.map((s) => [s, axios.create({ baseURL: pipeline.urls[s], headers: { authorization: `Bearer ${adminToken}` }, validateStatus: () => true })]),
  ) as E2E['admin'];
  const infra = localInfraEnv();
  const kafka = createKafka({ clientId: namespace, brokers: infra.KAFKA_BROKERS!.split(','), logger: createLogger('e2e', 'error'), security: infra });
  const operator: OperatorConfig = {
    KAFKA_BROKERS: infra.KAFKA_BROKERS!.split(','),
    SCHEMA_REGISTRY_URL: infra.SCHEMA_REGISTRY_URL!,
    TOPIC_NAMESPACE: namespace,
    INGEST_URL: pipeline.urls.ingest, FULFILLMENT_URL: pipeline.urls.fulfillment, SALES_URL: pipeline.urls.sales, PAYOUTS_URL: pipeline.urls.payouts,
    POSTSALE_ADMIN_TOKEN: adminToken,
    ...kafkaSecuritySchema.parse(infra),
  };
  return {
    pipeline, namespace, admin, operator, kafka,
    codec: EventCodec.connect(infra.SCHEMA_REGISTRY_URL!, namespace),
    async stop() {
      await pipeline.stop();
      for (const s of SERVICES) await dropSchema(`${s}${pipeline.options.schemaSuffix}`);
      // the pipeline's topics on the local broker (each partition costs the broker open files); a private broker's go with it
      await deleteNamespaceTopics(namespace, infra).catch((error: Error) => console.warn(`[e2e] topics of ${namespace} not deleted: ${error.message}`));
    },
  };
}
