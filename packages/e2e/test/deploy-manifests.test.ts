import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { REPO_ROOT, SERVICE_NODE_FLAGS, SERVICE_PROCESS_ENV, SERVICES, type ServiceName } from '@postsale/cli';
import { loadConfig } from '@postsale/runtime';
import { configSchema as fulfillmentConfig } from '@postsale/fulfillment';
import { configSchema as ingestConfig } from '@postsale/ingest';
import { configSchema as payoutsConfig } from '@postsale/payouts';
import { configSchema as salesConfig } from '@postsale/sales';

/**
 * There is no Docker engine or cluster here, so the deployment files are checked by reading them: each service must
 * start with exactly the environment its Deployment (or compose service) and the image give it, in production mode.
 * Values that come from a Secret or from the operator's .env are replaced by a realistic sample of their kind;
 * everything else is taken as written.
 */
const SCHEMAS: Record<ServiceName, z.ZodType> = { ingest: ingestConfig, fulfillment: fulfillmentConfig, sales: salesConfig, payouts: payoutsConfig };

/** What an operator supplies through a Secret or .env: one sample per variable, of the kind the service expects. */
const SUPPLIED_BY_OPERATOR: Record<string, string> = {
  DATABASE_URL: 'postgres://svc:pw@postgres:5432/postsale',
  ADMIN_TOKEN: 'a-long-random-admin-token-0123456789',
  OPERATOR_TOKEN: 'another-long-random-operator-token-42',
  CREDENTIALS_KEY: Buffer.alloc(32, 7).toString('base64'),
  PERSONAL_DATA_KEY: Buffer.alloc(32, 9).toString('base64'),
  KAFKA_SASL_USERNAME: 'postsale-service',
  KAFKA_SASL_PASSWORD: 'a-long-random-kafka-password-0123456789',
  PLATFORM_PAYEE_EMAIL: 'platform@example.org',
  PAYPAL_CLIENT_ID: 'client-id',
  PAYPAL_CLIENT_SECRET: 'client-secret',
  PAYPAL_WEBHOOK_ID: 'WH-ID',
  // the strictest modes: a deployment must be able to run for real
  SUPPLIER_MODE: 'live',
  PAYOUTS_MODE: 'live',
};
const SECRET_NAMES = /TOKEN|SECRET|KEY|PASSWORD|DATABASE_URL|EMAIL|CLIENT_ID|WEBHOOK_ID/;

const read = (...path: string[]) => readFileSync(join(REPO_ROOT, ...path), 'utf8');

function imageEnv(): Record<string, string> {
  const dockerfile = read('deploy', 'docker', 'Dockerfile');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const [, pairs] of finalStage.matchAll(/^ENV (.+)$/gm)) {
    for (const [, name, value] of pairs!.matchAll(/(\w+)=(\S+)/g)) env[name!] = value!;
  }
  delete env.SERVICE; // the image's own selector, not service configuration
  for (const name of Object.keys(SERVICE_PROCESS_ENV)) delete env[name]; // read by the C library, not the service's config
  return env;
}

function supplied(name: string, where: string): string {
  const value = SUPPLIED_BY_OPERATOR[name];
  if (value === undefined) throw new Error(`${where}: ${name} comes from outside; add a sample for it to this test`);
  return value;
}

interface K8sEnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }
interface K8sContainer {
  name: string; image: string; env?: K8sEnvVar[];
  readinessProbe?: { httpGet?: { path: string } }; livenessProbe?: { httpGet?: { path: string } };
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { cpu?: string; memory?: string } };
}
interface K8sDeployment {
  kind: string; metadata: { name: string };
  spec: { replicas: number; template: { spec: { securityContext?: { runAsNonRoot?: boolean }; containers: K8sContainer[] } } };
}

function k8sDocuments(file: string): Array<{ kind: string; metadata: { name: string }; data?: Record<string, string> }> {
  return parseAllDocuments(read('deploy', 'k8s', file)).map((d) => d.toJS());
}

/** a service's Deployment, or another Deployment of the same image in its own file (`ingest-webhooks`) */
function k8sDeployment(service: ServiceName, file: string = service): K8sDeployment {
  const deployment = k8sDocuments(`${file}.yaml`).find((d) => d.kind === 'Deployment') as K8sDeployment | undefined;
  if (!deployment) throw new Error(`deploy/k8s/${file}.yaml has no Deployment`);
  return deployment;
}

function k8sEnv(service: ServiceName, file: string = service): Record<string, string> {
  const configMap = k8sDocuments('configmap.yaml').find((d) => d.kind === 'ConfigMap')!;
  const env = imageEnv();
  for (const variable of k8sDeployment(service, file).spec.template.spec.containers[0]!.env ?? []) {
    const from = variable.valueFrom;
    if (from?.configMapKeyRef) {
      const value = configMap.data?.[from.configMapKeyRef.key];
      if (value === undefined) throw new Error(`${service}: ${variable.name} names ConfigMap key ${from.configMapKeyRef.key}, which configmap.yaml lacks`);
      env[variable.name] = value;
    } else if (from?.secretKeyRef) env[variable.name] = supplied(variable.name, `k8s ${service}`);
    else env[variable.name] = String(variable.value);
  }
  return env;
}

function composeEnv(service: ServiceName): Record<string, string> {
  const compose = parse(read('deploy', 'docker', 'docker-compose.yml'), { merge: true }) as { services: Record<string, { environment: Record<string, string | number> }> };
  const env = imageEnv();
  for (const [name, raw] of Object.entries(compose.services[service]!.environment)) {
    // "${VAR:-default}" takes the default; "${VAR:?}" / "${VAR}" must come from the operator's .env
    const interpolated = /^\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}$/.exec(String(raw));
    env[name] = interpolated ? (interpolated[2] ?? supplied(name, `compose ${service}`)) : String(raw);
  }
  return env;
}

/** The variables a config schema knows: its object's keys, also when the object is piped into a transform. */
function knownNames(schema: z.ZodType): Set<string> {
  const inner = schema as unknown as { shape?: Record<string, unknown>; in?: z.ZodType };
  if (inner.shape) return new Set(Object.keys(inner.shape));
  if (inner.in) return knownNames(inner.in);
  throw new Error('config schema is neither an object nor a pipe from one');
}

function unknownNames(service: ServiceName, env: Record<string, string>): string[] {
  const known = knownNames(SCHEMAS[service]);
  return Object.keys(env).filter((name) => !known.has(name));
}

describe('deployment files agree with each service\'s config schema', () => {
  it.each(SERVICES)('%s: the k8s Deployment gives everything the config requires in production, and only names it knows', (service) => {
    const env = k8sEnv(service);
    expect(env.NODE_ENV).toBe('production');
    expect(unknownNames(service, env)).toEqual([]);
    expect(() => loadConfig(SCHEMAS[service], env)).not.toThrow();
  });

  it.each(SERVICES)('%s: the compose service gives everything the config requires in production, and only names it knows', (service) => {
    const env = composeEnv(service);
    expect(unknownNames(service, env)).toEqual([]);
    expect(() => loadConfig(SCHEMAS[service], env)).not.toThrow();
  });

  it.each(SERVICES)('%s: k8s and compose authenticate to Kafka (SCRAM-SHA-512), with the password from a Secret or .env', (service) => {
    for (const env of [k8sEnv(service), composeEnv(service)]) {
      expect(env.NODE_ENV).toBe('production');
      expect(env.KAFKA_SASL_MECHANISM).toBe('scram-sha-512');
      expect(env.KAFKA_SASL_PASSWORD).toBe(SUPPLIED_BY_OPERATOR.KAFKA_SASL_PASSWORD);
    }
    const secretRef = (name: string) => k8sDeployment(service).spec.template.spec.containers[0]!.env!.find((v) => v.name === name)?.valueFrom?.secretKeyRef;
    expect(secretRef('KAFKA_SASL_USERNAME')?.name).toBe(`postsale-${service}`);
    expect(secretRef('KAFKA_SASL_PASSWORD')?.name).toBe(`postsale-${service}`);
  });

  it.each(SERVICES)('%s: in production it refuses to start without Kafka authentication', (service) => {
    const { KAFKA_SASL_MECHANISM: _m, KAFKA_SASL_USERNAME: _u, KAFKA_SASL_PASSWORD: _p, ...withoutSasl } = k8sEnv(service);
    expect(() => loadConfig(SCHEMAS[service], withoutSasl)).toThrow(/KAFKA_SASL_MECHANISM: required in production/);
    const { NODE_ENV: _n, ...withoutMode } = k8sEnv(service);
    expect(() => loadConfig(SCHEMAS[service], withoutMode)).toThrow(/NODE_ENV is missing/);
  });

  it.each(['ingest', 'fulfillment'] as const)('%s seals credentials: in production it refuses to start without CREDENTIALS_KEY', (service) => {
    const { CREDENTIALS_KEY: _k, ...withoutKey } = k8sEnv(service);
    expect(() => loadConfig(SCHEMAS[service], withoutKey)).toThrow(/CREDENTIALS_KEY/);
  });

  it.each(['ingest', 'fulfillment'] as const)('%s reads buyers\' sealed data: in production it refuses to start without PERSONAL_DATA_KEY', (service) => {
    const { PERSONAL_DATA_KEY: _k, ...withoutKey } = k8sEnv(service);
    expect(() => loadConfig(SCHEMAS[service], withoutKey)).toThrow(/PERSONAL_DATA_KEY: required in production/);
  });

  it('compose gives each service its own admin and operator tokens', () => {
    const compose = parse(read('deploy', 'docker', 'docker-compose.yml'), { merge: true }) as { services: Record<string, { environment: Record<string, string> }> };
    const tokens = SERVICES.flatMap((s) => [compose.services[s]!.environment.ADMIN_TOKEN, compose.services[s]!.environment.OPERATOR_TOKEN]);
    expect(tokens.every((t) => typeof t === 'string' && t.startsWith('${'))).toBe(true);
    expect(new Set(tokens).size).toBe(SERVICES.length * 2);
  });

  it('the check itself notices a missing required variable and a misspelt one', () => {
    const env = k8sEnv('fulfillment');
    const { SUPPLIER_MODE: _dropped, ...withoutMode } = env;
    expect(() => loadConfig(SCHEMAS.fulfillment, withoutMode)).toThrow(/SUPPLIER_MODE is missing/);
    expect(unknownNames('payouts', { ...k8sEnv('payouts'), PAYPAL_API_BASE_URL: 'https://api-m.paypal.com' })).toEqual(['PAYPAL_API_BASE_URL']);
  });
});

describe('k8s Deployments are production-shaped', () => {
  it.each(SERVICES)('%s: two replicas, probes on /readyz and /healthz, requests and limits, non-root, secrets only from a Secret', (service) => {
    const deployment = k8sDeployment(service);
    const [container] = deployment.spec.template.spec.containers;
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(container!.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container!.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container!.resources?.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container!.resources?.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(deployment.spec.template.spec.securityContext?.runAsNonRoot).toBe(true);
    expect((container!.env ?? []).map((v) => v.name)).toEqual(expect.arrayContaining(['ADMIN_TOKEN', 'OPERATOR_TOKEN']));
    const inlineSecrets = (container!.env ?? []).filter((v) => SECRET_NAMES.test(v.name) && !v.valueFrom?.secretKeyRef).map((v) => v.name);
    expect(inlineSecrets).toEqual([]);
  });
});

describe('webhook-only ingest replicas (deploy/k8s/ingest-webhooks.yaml)', () => {
  type Labelled = K8sDeployment & { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } } };
  const webhooks = () => k8sDeployment('ingest', 'ingest-webhooks') as Labelled;

  it('run ingest\'s own environment with background workers off, valid in production', () => {
    const env = k8sEnv('ingest', 'ingest-webhooks');
    const { BACKGROUND_WORKERS, ...rest } = env;
    expect(BACKGROUND_WORKERS).toBe('false');
    expect(rest).toEqual(k8sEnv('ingest'));
    expect(unknownNames('ingest', env)).toEqual([]);
    expect((loadConfig(SCHEMAS.ingest, env) as { BACKGROUND_WORKERS: boolean }).BACKGROUND_WORKERS).toBe(false);
  });

  it('are production-shaped, and neither Deployment selects the other\'s pods (each Service reaches one kind)', () => {
    const deployment = webhooks();
    const [container] = deployment.spec.template.spec.containers;
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(container!.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container!.resources?.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(deployment.spec.template.spec.securityContext?.runAsNonRoot).toBe(true);
    const workers = k8sDeployment('ingest') as Labelled;
    const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(selects(workers.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(false);
    expect(selects(deployment.spec.selector.matchLabels, workers.spec.template.metadata.labels)).toBe(false);
    const service = k8sDocuments('ingest-webhooks.yaml').find((d) => d.kind === 'Service') as unknown as { spec: { selector: Record<string, string> } };
    expect(selects(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    expect(selects(service.spec.selector, workers.spec.template.metadata.labels)).toBe(false);
  });
});

describe('the image recipe', () => {
  const dockerfile = read('deploy', 'docker', 'Dockerfile');
  it('builds in one stage and runs compiled output as a non-root user in another, without tsx or dev dependencies', () => {
    const stages = dockerfile.split(/^FROM /m).slice(1);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const runStage = stages.at(-1)!;
    expect(runStage).toMatch(/^USER node$/m);
    expect(runStage).toMatch(/CMD .*services\/\$\{SERVICE\}\/dist\/main\.js/);
    expect(dockerfile).not.toMatch(/tsx/);
    expect(dockerfile).toMatch(/npm ci --omit=dev .*--workspace="@postsale\/\$\{SERVICE\}"/);
    expect(dockerfile).toMatch(/node:24/);
  });

  it('runs each service with the same Node flags and process environment as the local stack (young generation capped, source maps)', () => {
    expect(dockerfile).toContain(`exec node ${SERVICE_NODE_FLAGS.join(' ')} services/\${SERVICE}/dist/main.js`);
    const environment = Object.entries(SERVICE_PROCESS_ENV).map(([name, value]) => `${name}=${value}`);
    for (const setting of environment) expect(dockerfile).toMatch(new RegExp(`^ENV ${setting}$`, 'm'));
    for (const service of SERVICES) {
      const pkg = JSON.parse(read('services', service, 'package.json')) as { scripts: Record<string, string> };
      expect(pkg.scripts.start).toBe(`${environment.join(' ')} node ${SERVICE_NODE_FLAGS.join(' ')} dist/main.js`);
    }
  });
});
