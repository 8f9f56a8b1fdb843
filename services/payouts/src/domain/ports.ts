/** What the payout use cases need from PayPal Payouts; implemented by clients/paypal-payouts.client.ts. */
export interface PayoutRequestItem {
  recipient_type: 'EMAIL';
  receiver: string;
  amount: { value: string; currency: string };
  sender_item_id: string;
  note: string;
}

export interface PayoutRequestBody {
  sender_batch_header: { sender_batch_id: string; email_subject: string; email_message: string; recipient_type: 'EMAIL' };
  items: PayoutRequestItem[];
}

export type CreateBatchResult =
  /** PayPal created the batch now */
  | { kind: 'accepted'; payoutBatchId: string; batchStatus: string }
  /** PayPal already has a batch with this sender_batch_id (an earlier call went through); its id when PayPal says it */
  | { kind: 'duplicate'; payoutBatchId: string | null; debugId?: string | null; name?: string; httpStatus?: number }
  /** PayPal refused this request (nothing was created by THIS call): its error name, message and debug_id */
  | { kind: 'rejected'; httpStatus: number; name: string; message: string; debugId?: string | null; details?: string[] }
  /** timeout, dropped connection, 5xx: PayPal may or may not have created it */
  | { kind: 'unknown'; message: string };

export interface PayPalItemState {
  payoutItemId: string;
  payoutBatchId: string;
  senderItemId: string | null;
  senderBatchId: string | null;
  transactionStatus: string;
  transactionId: string | null;
  errorName: string | null;
  errorMessage: string | null;
}

export interface PayPalBatchState {
  payoutBatchId: string;
  batchStatus: string;
  /** the sender_batch_id PayPal has for this batch (null when the answer did not say) */
  senderBatchId?: string | null;
  items: PayPalItemState[];
}

export type CancelItemResult = { kind: 'cancelled'; item: PayPalItemState } | { kind: 'refused'; name: string; message: string };

export interface PayoutsGateway {
  createBatch(body: PayoutRequestBody): Promise<CreateBatchResult>;
  getBatch(payoutBatchId: string): Promise<PayPalBatchState>;
  getItem(payoutItemId: string): Promise<PayPalItemState>;
  cancelItem(payoutItemId: string): Promise<CancelItemResult>;
}
