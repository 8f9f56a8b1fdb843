import axios, { type AxiosInstance } from 'axios';

export class OperatorAuthError extends Error {}

/** The operator's HTTP client for one service's /admin routes. */
export function adminClient(baseURL: string, token: string | undefined): AxiosInstance {
  if (!token) throw new OperatorAuthError('no operator credential: set POSTSALE_ADMIN_TOKEN');
  return axios.create({ baseURL, timeout: 10_000, headers: { authorization: `Bearer ${token}` }, validateStatus: () => true });
}
