import { Accounts } from './accounts';
import { Catalog } from './catalog';
import { MethodFailures } from './method-failures';
import { OrderBook } from './order-book';
import type { PlaceOrderContext } from './place-order';
import type { AliExpressFakeOptions, PaymentOutcome, WebCheckoutSwitches } from './types';

const DAY_MS = 86_400_000;

/** Everything one fake instance knows; the gateway, the web checkout and the programmatic API share it. */
export class FakeState {
  readonly now: () => number;
  readonly catalog = new Catalog();
  readonly accounts = new Accounts();
  readonly book: OrderBook;
  readonly failures = new MethodFailures();
  readonly calls = new Map<string, number>();
  readonly dailyQuota: number;
  readonly orderQueryLagMs: number;
  paymentOutcome: PaymentOutcome = 'settle';
  web: WebCheckoutSwitches = {};
  private readonly placeSettings: Omit<PlaceOrderContext, 'catalog' | 'accounts' | 'book' | 'now' | 'paymentOutcome'>;

  constructor(options: AliExpressFakeOptions) {
    this.now = options.now ?? Date.now;
    this.book = new OrderBook(this.now);
    this.dailyQuota = options.dailyQuota ?? 1_000_000;
    this.orderQueryLagMs = options.orderQueryLagMs ?? 0;
    this.placeSettings = {
      idempotencyWindowMs: options.idempotencyWindowMs ?? DAY_MS,
      duplicateBehaviour: options.duplicateOutOrderIdBehaviour ?? 'repeated-order-error',
      paymentSettleAfterMs: options.paymentSettleAfterMs ?? 0,
    };
  }

  placeContext(): PlaceOrderContext {
    return {
      ...this.placeSettings,
      catalog: this.catalog,
      accounts: this.accounts,
      book: this.book,
      now: this.now,
      paymentOutcome: () => this.paymentOutcome,
    };
  }

  countCall(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }
}
