import net from 'node:net';
import { startService, type Db, type ServiceDefinition } from '../src';
import { dropSchema, testEnv } from '../src/testing';
import { fixtureService } from './fixture-service';

/** A start that fails half-way leaves nothing open in the caller's process: the database pool above all. */
describe('startService when the start fails after the database pool was made', () => {
  const schemas: string[] = [];
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  /** the fixture service, keeping the pool startService made so the test can try it afterwards */
  const capturing = (fail?: Error): { definition: ServiceDefinition<typeof fixtureService.configSchema>; db: () => Db } => {
    let db: Db | undefined;
    return {
      definition: {
        ...fixtureService,
        async build(ctx) {
          db = ctx.db;
          if (fail) throw fail;
          return fixtureService.build(ctx);
        },
      },
      db: () => db!,
    };
  };
  const envFor = (overrides: Record<string, string> = {}) => {
    const env = testEnv('startfail', overrides);
    schemas.push(env.DB_SCHEMA!);
    return env;
  };

  it('when building the service throws, then the error reaches the caller and the pool is closed', async () => {
    const { definition, db } = capturing(new Error('build failed on purpose'));
    await expect(startService(definition, envFor())).rejects.toThrow('build failed on purpose');
    await expect(db().raw('select 1')).rejects.toThrow(/unable to acquire a connection/i);
  });

  it('when the HTTP port is taken (relay and consumers already running), then the pool is closed as well', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '0.0.0.0', r));
    try {
      const { definition, db } = capturing();
      const port = (taken.address() as net.AddressInfo).port;
      await expect(startService(definition, envFor({ PORT: String(port) }))).rejects.toThrow(/EADDRINUSE/);
      await expect(db().raw('select 1')).rejects.toThrow(/unable to acquire a connection/i);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
