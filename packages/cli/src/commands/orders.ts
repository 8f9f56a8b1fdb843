import { adminClient, OperatorAuthError } from '../admin-client';
import { serviceUrls, type OperatorConfig } from '../operator-config';

/** An order's journey: what each service knows about it, asked of each service's admin API. */
export async function orderJourney(config: OperatorConfig, orderId: string): Promise<Record<string, unknown>> {
  const journey: Record<string, unknown> = {};
  for (const [service, url] of Object.entries(serviceUrls(config))) {
    const response = await adminClient(url, config.POSTSALE_ADMIN_TOKEN)
      .get(`/admin/orders/${encodeURIComponent(orderId)}`)
      .catch((error: Error) => ({ status: 0, data: { error: { message: error.message } } }));
    if (response.status === 401) throw new OperatorAuthError(`${service} refused the operator credential`);
    journey[service] = response.status === 200 ? response.data : { status: response.status, ...(response.data as object) };
  }
  return journey;
}
