/**
 * Who may call: apps (app key + secret), sellers' access tokens, web logins, and the supplier-side switches that
 * refuse a buyer or an account. Each seller has its own app and token; a token is bound to the app it was issued
 * to, so one seller's token never works with another seller's app key.
 */
export interface AccessTokenGrant {
  appKey: string;
  accessToken: string;
  /** the seller's AliExpress buyer account: orders belong to it */
  account: string;
  /** epoch ms; undefined = never expires */
  expiresAt?: number;
}

export interface WebAccount {
  email: string;
  password: string;
  account: string;
}

const BEIJING_OFFSET_MS = 8 * 3600_000;
const DAY_MS = 86_400_000;

export class Accounts {
  private readonly apps = new Map<string, string>();
  private readonly tokens = new Map<string, AccessTokenGrant>();
  private readonly disabled = new Set<string>();
  private readonly blacklist = new Set<string>();
  private readonly web = new Map<string, WebAccount>();
  private readonly calls = new Map<string, { day: number; count: number }>();

  registerApp(appKey: string, appSecret: string): void {
    this.apps.set(appKey, appSecret);
  }

  secretOf(appKey: string): string | undefined {
    return this.apps.get(appKey);
  }

  registerToken(grant: AccessTokenGrant): void {
    if (!this.apps.has(grant.appKey)) throw new Error(`register app ${grant.appKey} before its tokens`);
    this.tokens.set(grant.accessToken, { ...grant });
  }

  expireToken(accessToken: string, at: number): void {
    const grant = this.tokens.get(accessToken);
    if (!grant) throw new Error('unknown access token');
    grant.expiresAt = at;
  }

  /** The account a token acts for, or undefined when the token is unknown, expired, or issued to another app. */
  accountFor(appKey: string, accessToken: string, now: number): string | undefined {
    const grant = this.tokens.get(accessToken);
    if (!grant || grant.appKey !== appKey) return undefined;
    if (grant.expiresAt !== undefined && grant.expiresAt <= now) return undefined;
    return grant.account;
  }

  /** Counts one call against the app's daily quota; false once the quota is used up (until midnight Beijing time). */
  consumeQuota(appKey: string, quota: number, now: number): boolean {
    const day = Math.floor((now + BEIJING_OFFSET_MS) / DAY_MS);
    const entry = this.calls.get(appKey);
    const current = entry && entry.day === day ? entry : { day, count: 0 };
    current.count += 1;
    this.calls.set(appKey, current);
    return current.count <= quota;
  }

  /** Seconds until the ban lifts, for the error's sub_msg. */
  secondsUntilBeijingMidnight(now: number): number {
    const local = now + BEIJING_OFFSET_MS;
    return Math.ceil((DAY_MS - (local % DAY_MS)) / 1000);
  }

  disable(account: string): void {
    this.disabled.add(account);
  }

  enable(account: string): void {
    this.disabled.delete(account);
  }

  isDisabled(account: string): boolean {
    return this.disabled.has(account);
  }

  /** Buyer names are compared case- and space-insensitively, since that is how a person would be recognised. */
  blacklistBuyer(name: string): void {
    this.blacklist.add(normalizeName(name));
  }

  isBlacklisted(name: string | undefined): boolean {
    return name !== undefined && this.blacklist.has(normalizeName(name));
  }

  registerWebAccount(account: WebAccount): void {
    this.web.set(account.email.toLowerCase(), { ...account });
  }

  webLogin(email: string, password: string): WebAccount | undefined {
    const account = this.web.get(email.trim().toLowerCase());
    return account && account.password === password ? account : undefined;
  }
}

function normalizeName(name: string): string {
  return name.trim().replace(/\s+/g, ' ').toLowerCase();
}
