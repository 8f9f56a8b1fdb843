import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { baseConfigSchema, requireRoles, startService, whoami, type RunningService, type ServiceDefinition } from '@postsale/runtime';
import { dropSchema, testEnv } from '@postsale/runtime/testing';

const ADMIN = 'test-admin-token-0123456789';
const OPERATOR = 'test-operator-token-0123456789';

/** Stands in for ingest's /admin: the same guard and whoami route. */
const fixture: ServiceDefinition<typeof baseConfigSchema> = {
  name: 'cli-credentials-fixture',
  configSchema: baseConfigSchema,
  produces: [],
  migrations: [],
  build({ config }) {
    return {
      routes(app) {
        app.use('/admin', requireRoles({ admin: config.ADMIN_TOKEN, operator: config.OPERATOR_TOKEN }));
        app.get('/admin/whoami', whoami());
      },
    };
  },
};

function cli(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
    if (env.POSTSALE_ADMIN_TOKEN === undefined) delete childEnv.POSTSALE_ADMIN_TOKEN;
    const child = spawn(process.execPath, [join(__dirname, '..', 'bin', 'postsale.js'), ...args], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('postsale commands that act on Kafka need the admin credential', () => {
  let env: Record<string, string>;
  let running: RunningService;
  beforeAll(async () => {
    env = testEnv('cli', { ADMIN_TOKEN: ADMIN, OPERATOR_TOKEN: OPERATOR });
    running = await startService(fixture, env);
  });
  afterAll(async () => {
    await running.stop();
    await dropSchema(env.DB_SCHEMA!);
  });

  it('when topics, dlq or replay run with the operator credential, a wrong one or none, then they stop with exit code 3; with the admin one, topics runs', async () => {
    const base = { INGEST_URL: running.url, TOPIC_NAMESPACE: env.TOPIC_NAMESPACE! };
    const commands = [['topics'], ['dlq', 'list'], ['dlq', 'redrive', '--all'], ['replay', '--topic', 'x', '--group', 'y', '--from', '0']];
    for (const [token, cases] of [[OPERATOR, commands], ['wrong-token-0123456789', commands.slice(0, 1)], [undefined, commands.slice(0, 1)]] as const) {
      for (const args of cases) {
        const run = await cli(args, { ...base, POSTSALE_ADMIN_TOKEN: token });
        if (run.code !== 3) throw new Error(`${args.join(' ')} exited ${run.code}: ${run.stderr.slice(0, 500)}`);
        expect(run.stderr).toMatch(/not authorised/);
      }
    }
    const admin = await cli(['topics'], { ...base, POSTSALE_ADMIN_TOKEN: ADMIN });
    expect(admin.stderr).toBe('');
    expect(admin.code).toBe(0);
  });
});
