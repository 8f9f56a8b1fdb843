/**
 * `npm run rotate-credentials -w @postsale/ingest`: re-seals every marketplace token and storefront capture secret with
 * the current CREDENTIALS_KEY (the runtime's rotateSealedCredentials says when to run it). Prints counts, never a secret.
 */
import { rotateSealedCredentials, runRotationCommand, type RotationResult } from '@postsale/runtime';
import { configSchema } from './config';
import { SellersRepository } from './db/sellers.repository';

export function rotateCredentials(env: Record<string, string | undefined> = process.env): Promise<RotationResult> {
  return rotateSealedCredentials({ service: 'ingest', configSchema, env, reseal: (db, box) => new SellersRepository(db).resealAll(box) });
}

if (typeof require !== 'undefined' && require.main === module) runRotationCommand('ingest', rotateCredentials, 'accounts');
