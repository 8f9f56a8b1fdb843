/** Minimal typings for the untyped `@paypal/payouts-sdk` (and its `@paypal/paypalhttp` base), as our adapter uses it; the sandbox and e2e tests that drive the real SDK include this one file too. */
declare module '@paypal/payouts-sdk' {
  export interface HttpResponse<T> {
    statusCode: number;
    headers: Record<string, string>;
    result: T;
  }
  export namespace core {
    class PayPalEnvironment {
      constructor(clientId: string, clientSecret: string, baseUrl: string, webUrl: string);
      clientId: string;
      baseUrl: string;
    }
    class PayPalHttpClient {
      constructor(environment: PayPalEnvironment, refreshToken?: string);
      execute<T = unknown>(request: object): Promise<HttpResponse<T>>;
      getTimeout(): number;
    }
  }
  export namespace payouts {
    class PayoutsPostRequest {
      requestBody(body: unknown): this;
      payPalRequestId(id: string): this;
    }
    class PayoutsGetRequest {
      constructor(payoutBatchId: string);
      page(page: number): this;
      pageSize(size: number): this;
      totalRequired(required: boolean): this;
    }
    class PayoutsItemGetRequest {
      constructor(payoutItemId: string);
    }
    class PayoutsItemCancelRequest {
      constructor(payoutItemId: string);
    }
  }
}
