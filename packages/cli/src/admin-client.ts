import axios, { type AxiosInstance } from 'axios';

export class OperatorAuthError extends Error {}

/** The operator's HTTP client for one service's /admin routes. */
export function adminClient(baseURL: string, token: string | undefined): AxiosInstance {
  if (!token) throw new OperatorAuthError('no operator credential: set POSTSALE_ADMIN_TOKEN');
  return axios.create({ baseURL, timeout: 10_000, headers: { authorization: `Bearer ${token}` }, validateStatus: () => true });
}

/**
 * Commands that act on Kafka directly (replay, dlq, topics) need the admin credential: ingest says which role the
 * configured token has (`GET /admin/whoami`). A missing, refused or operator-only credential stops the command.
 */
export async function requireAdminCredential(ingestUrl: string, token: string | undefined): Promise<void> {
  const response = await adminClient(ingestUrl, token).get<{ role?: string }>('/admin/whoami');
  if (response.status === 401) throw new OperatorAuthError('the credential was refused');
  if (response.status !== 200) throw new Error(`ingest answered ${response.status} to /admin/whoami`);
  if (response.data.role !== 'admin') throw new OperatorAuthError('this command needs the admin credential (the operator credential only reads)');
}
