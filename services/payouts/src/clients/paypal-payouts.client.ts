import * as paypal from '@paypal/payouts-sdk';
import type {
  CancelItemResult,
  CreateBatchResult,
  PayoutRequestBody,
  PayoutsGateway,
  PayPalBatchPage,
  PayPalBatchState,
  PayPalItemState,
} from '../domain/ports';

/** The SDK's client with a configurable timeout (its own is a fixed 30 s). */
class TimedPayPalClient extends paypal.core.PayPalHttpClient {
  constructor(environment: paypal.core.PayPalEnvironment, private readonly timeoutMs: number) {
    super(environment);
  }
  override getTimeout(): number {
    return this.timeoutMs;
  }
}

interface SdkError {
  statusCode?: number;
  message?: string;
}

interface PayPalErrorBody {
  name?: string;
  message?: string;
  debug_id?: string;
  details?: Array<{ field?: string; issue?: string; link?: Array<{ href?: string; rel?: string }> }>;
}

const PAGE_SIZE = 1000;

/**
 * PayPal Payouts through `@paypal/payouts-sdk`. Classifies every answer into what the use case must do next; it never
 * retries a create on its own (an unknown outcome goes back to the caller, which resolves it with the same
 * sender_batch_id).
 */
export class PayPalPayoutsClient implements PayoutsGateway {
  private readonly client: TimedPayPalClient;

  constructor(options: { clientId: string; clientSecret: string; baseUrl: string; webUrl: string; timeoutMs: number }) {
    const environment = new paypal.core.PayPalEnvironment(options.clientId, options.clientSecret, options.baseUrl, options.webUrl);
    this.client = new TimedPayPalClient(environment, options.timeoutMs);
  }

  async createBatch(body: PayoutRequestBody): Promise<CreateBatchResult> {
    const request = new paypal.payouts.PayoutsPostRequest().requestBody(body);
    try {
      const response = await this.client.execute<{ batch_header?: { payout_batch_id?: string; batch_status?: string } }>(request);
      const id = response.result?.batch_header?.payout_batch_id;
      if (!id) return { kind: 'unknown', message: `create answered ${response.statusCode} without a payout_batch_id` };
      return { kind: 'accepted', payoutBatchId: id, batchStatus: response.result.batch_header?.batch_status ?? 'PENDING' };
    } catch (error) {
      const e = error as SdkError;
      const status = e.statusCode;
      if (status === undefined || status >= 500 || status === 401 || status === 408 || status === 429) {
        return { kind: 'unknown', message: status ? `HTTP ${status}` : (e.message ?? String(error)) };
      }
      const parsed = parseErrorBody(e.message);
      // PayPal's real answer (external-apis.md "Corrections"): 400 USER_BUSINESS_ERROR, details[].field SENDER_BATCH_ID,
      // issue "Batch with given sender_batch_id already exists", link[] to the original batch. The field is what
      // identifies it; the wording is matched loosely (an older wording said "Duplicate batch request").
      const duplicate = parsed.details?.find((d) => d.field?.toUpperCase() === 'SENDER_BATCH_ID' && /already exists|duplicate/i.test(d.issue ?? ''));
      if (parsed.name === 'USER_BUSINESS_ERROR' && duplicate) {
        // The HATEOAS link's last path segment is the original payout_batch_id.
        const href = duplicate.link?.find((l) => typeof l.href === 'string')?.href;
        let id = '';
        try {
          id = href ? decodeURIComponent(new URL(href).pathname.split('/').filter(Boolean).pop() ?? '') : '';
        } catch {
          id = '';
        }
        return { kind: 'duplicate', payoutBatchId: id || null, debugId: parsed.debug_id ?? null, name: parsed.name, httpStatus: status };
      }
      return {
        kind: 'rejected', httpStatus: status, name: parsed.name ?? `HTTP_${status}`, message: parsed.message ?? 'rejected', debugId: parsed.debug_id ?? null,
        details: (parsed.details ?? []).map((d) => [d.field, d.issue].filter(Boolean).join(': ')).filter(Boolean),
      };
    }
  }

  async getBatch(payoutBatchId: string): Promise<PayPalBatchState> {
    const items: PayPalItemState[] = [];
    let batchStatus = 'PENDING';
    let senderBatchId: string | null = null;
    for (let page = 1; ; page++) {
      const read = await this.getBatchPage(payoutBatchId, page);
      batchStatus = read.batchStatus;
      senderBatchId = read.senderBatchId ?? senderBatchId;
      items.push(...read.items);
      if (page >= read.totalPages || read.items.length === 0) break;
    }
    return { payoutBatchId, batchStatus, senderBatchId, items };
  }

  async getBatchPage(payoutBatchId: string, page: number): Promise<PayPalBatchPage> {
    const request = new paypal.payouts.PayoutsGetRequest(payoutBatchId).page(page).pageSize(PAGE_SIZE).totalRequired(true);
    const response = await this.client.execute<{ batch_header?: { batch_status?: string; sender_batch_header?: { sender_batch_id?: string } }; items?: unknown[]; total_page?: number }>(request);
    return {
      payoutBatchId, page,
      batchStatus: response.result?.batch_header?.batch_status ?? 'PENDING',
      senderBatchId: response.result?.batch_header?.sender_batch_header?.sender_batch_id ?? null,
      items: (response.result?.items ?? []).map((i) => toItemState(i, payoutBatchId)),
      totalPages: response.result?.total_page ?? 1,
    };
  }

  async getItem(payoutItemId: string): Promise<PayPalItemState> {
    const response = await this.client.execute<unknown>(new paypal.payouts.PayoutsItemGetRequest(payoutItemId));
    return toItemState(response.result, '');
  }

  async cancelItem(payoutItemId: string): Promise<CancelItemResult> {
    try {
      const response = await this.client.execute<unknown>(new paypal.payouts.PayoutsItemCancelRequest(payoutItemId));
      return { kind: 'cancelled', item: toItemState(response.result, '') };
    } catch (error) {
      const e = error as SdkError;
      if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500 && e.statusCode !== 401 && e.statusCode !== 429) {
        const parsed = parseErrorBody(e.message);
        return { kind: 'refused', name: parsed.name ?? `HTTP_${e.statusCode}`, message: parsed.message ?? 'refused' };
      }
      throw error;
    }
  }
}

function parseErrorBody(text: string | undefined): PayPalErrorBody {
  try {
    const parsed = JSON.parse(text ?? '') as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as PayPalErrorBody) : {};
  } catch {
    return {};
  }
}

function toItemState(raw: unknown, fallbackBatchId: string): PayPalItemState {
  const i = (raw ?? {}) as {
    payout_item_id?: string;
    payout_batch_id?: string;
    sender_batch_id?: string;
    transaction_status?: string;
    transaction_id?: string;
    payout_item?: { sender_item_id?: string };
    errors?: { name?: string; message?: string };
  };
  return {
    payoutItemId: String(i.payout_item_id ?? ''),
    payoutBatchId: String(i.payout_batch_id ?? fallbackBatchId),
    senderItemId: i.payout_item?.sender_item_id ?? null,
    senderBatchId: i.sender_batch_id ?? null,
    transactionStatus: String(i.transaction_status ?? 'PENDING'),
    transactionId: i.transaction_id ?? null,
    errorName: i.errors?.name ?? null,
    errorMessage: i.errors?.message ?? null,
  };
}

export { toItemState as payPalItemFromJson };
