import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '@postsale/cli';
import { loadConsoleConfig } from '../src';

/** The console's deployment files, checked without a Docker engine or a cluster. */
const read = (...parts: string[]) => readFileSync(join(REPO_ROOT, ...parts), 'utf8');

interface Container {
  env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }>;
  readinessProbe?: { httpGet?: { path: string } };
  livenessProbe?: { httpGet?: { path: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

describe('console deployment', () => {
  const docs = parseAllDocuments(read('deploy', 'k8s', 'console.yaml')).map((d) => d.toJS());
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const container = deployment.spec.template.spec.containers[0] as Container;

  it('the k8s Deployment gives everything the console requires in production; secrets come only from a Secret', () => {
    const configMap = parseAllDocuments(read('deploy', 'k8s', 'configmap.yaml')).map((d) => d.toJS()).find((d) => d.kind === 'ConfigMap');
    const env: Record<string, string> = {};
    for (const v of container.env) {
      if (v.value !== undefined) env[v.name] = v.value;
      else if (v.valueFrom?.configMapKeyRef) env[v.name] = configMap.data[v.valueFrom.configMapKeyRef.key];
      else if (v.valueFrom?.secretKeyRef) env[v.name] = `sample-secret-for-${v.name}-0123456789abcdef`;
    }
    expect(() => loadConsoleConfig(env)).not.toThrow();
    expect(loadConsoleConfig(env).NODE_ENV).toBe('production');
    expect(loadConsoleConfig(env).KAFKA_SASL_MECHANISM).toBe('scram-sha-512');
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']) expect(container.env.find((v) => v.name === name)?.valueFrom?.secretKeyRef).toBeDefined();
    const { KAFKA_SASL_MECHANISM: _m, ...withoutSasl } = env;
    expect(() => loadConsoleConfig(withoutSasl)).toThrow(/KAFKA_SASL_MECHANISM: required in production/);
    const secretNames = ['CONSOLE_OPERATOR_TOKEN', 'CONSOLE_ADMIN_TOKEN', 'CONSOLE_SESSION_SECRET', 'ADMIN_TOKEN'];
    for (const name of secretNames) expect(container.env.find((v) => v.name === name)?.valueFrom?.secretKeyRef).toBeDefined();
    expect(container.env.filter((v) => /TOKEN|SECRET/.test(v.name) && v.value !== undefined)).toEqual([]);
  });

  it('production refuses to start without the session secret, or with one credential for both roles', () => {
    const base = {
      NODE_ENV: 'production', CONSOLE_OPERATOR_TOKEN: 'operator-token-0123456789', CONSOLE_ADMIN_TOKEN: 'admin-token-0123456789abc', CONSOLE_AUDIT_FILE: '/data/a',
      ADMIN_TOKEN: 'x', INGEST_URL: 'http://i', FULFILLMENT_URL: 'http://f', SALES_URL: 'http://s', PAYOUTS_URL: 'http://p', KAFKA_BROKERS: 'k:9092',
      SCHEMA_REGISTRY_URL: 'http://r',
    };
    expect(() => loadConsoleConfig(base)).toThrow(/CONSOLE_SESSION_SECRET: required in production/);
    expect(() => loadConsoleConfig({ ...base, CONSOLE_SESSION_SECRET: 's'.repeat(32), CONSOLE_ADMIN_TOKEN: base.CONSOLE_OPERATOR_TOKEN })).toThrow(/must differ/);
  });

  it('the Deployment has probes, requests and limits, and runs non-root', () => {
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container.resources?.requests).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
    expect(container.resources?.limits).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
    expect(deployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  });

  it('the image recipe has two stages, runs compiled output with its static files, as the non-root node user', () => {
    const recipe = read('deploy', 'docker', 'console.Dockerfile');
    expect(recipe.match(/^FROM /gm)).toHaveLength(2);
    expect(recipe).toMatch(/^USER node$/m);
    expect(recipe).toContain('packages/console/public');
    expect(recipe).toMatch(/CMD \["node", "--enable-source-maps", "packages\/console\/dist\/main.js"\]/);
    expect(recipe).not.toMatch(/tsx/);
  });
});
