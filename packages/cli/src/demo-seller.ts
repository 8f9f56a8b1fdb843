import type { SandboxWorld } from '@postsale/sandbox';
import { DEMO } from '@postsale/sandbox';

/**
 * Registers the demo seller with each service through its admin API, exactly as an operator would: marketplace
 * accounts and tokens (ingest), supplier credentials, purchase policy and listing mappings (fulfillment),
 * commercial terms (sales), payee and release policy (payouts).
 */
export async function registerDemoSeller(urls: Record<string, string>, adminToken: string, world: SandboxWorld): Promise<void> {
  void urls;
  void adminToken;
  void world;
  void DEMO;
  // Filled in once the services' admin APIs are final (see services/*/README.md).
}
