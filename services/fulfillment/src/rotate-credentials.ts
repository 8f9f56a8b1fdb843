/**
 * `npm run rotate-credentials -w @postsale/fulfillment`: re-seals every supplier credential and marketplace token with
 * the current CREDENTIALS_KEY (the runtime's rotateSealedCredentials says when to run it). Prints counts, never a secret.
 */
import { rotateSealedCredentials, runRotationCommand, type RotationResult } from '@postsale/runtime';
import { configSchema } from './config';
import { SellerSettingsRepository } from './db/seller-settings.repository';

export function rotateCredentials(env: Record<string, string | undefined> = process.env): Promise<RotationResult> {
  return rotateSealedCredentials({ service: 'fulfillment', configSchema, env, reseal: (db, box) => new SellerSettingsRepository(db, box).resealAll() });
}

if (typeof require !== 'undefined' && require.main === module) runRotationCommand('fulfillment', rotateCredentials, 'rows');
