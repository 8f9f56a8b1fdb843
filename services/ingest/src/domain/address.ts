import type { Address } from '@postsale/contracts';

/** A ship-to as read from a marketplace, every field optional: nothing is assumed before it is checked. */
export interface RawAddress {
  fullName?: string | null;
  line1?: string | null;
  line2?: string | null;
  city?: string | null;
  region?: string | null;
  postalCode?: string | null;
  countryCode?: string | null;
  phone?: string | null;
}

const clean = (v: string | null | undefined): string | null => {
  const s = typeof v === 'string' ? v.trim() : '';
  return s === '' ? null : s;
};

/**
 * Either a complete address or the reason it is not. Never invents a value (lesson 10): an order with a missing
 * name, street, city or country travels with `shipTo: null` and the issue, and fulfillment sends it to review.
 */
export function completeAddress(raw: RawAddress | undefined | null): { shipTo: Address | null; shipToIssue: string | null } {
  if (!raw) return { shipTo: null, shipToIssue: 'MISSING_ADDRESS' };
  const fullName = clean(raw.fullName);
  const line1 = clean(raw.line1);
  const city = clean(raw.city);
  const country = clean(raw.countryCode)?.toUpperCase() ?? null;
  const missing = [!fullName && 'MISSING_NAME', !line1 && 'MISSING_STREET', !city && 'MISSING_CITY', !country && 'MISSING_COUNTRY'].filter(Boolean);
  if (missing.length > 0) return { shipTo: null, shipToIssue: missing.join(',') };
  if (!/^[A-Z]{2}$/.test(country!)) return { shipTo: null, shipToIssue: 'INVALID_COUNTRY_CODE' };
  return {
    shipTo: {
      fullName: fullName!,
      line1: line1!,
      line2: clean(raw.line2),
      city: city!,
      region: clean(raw.region),
      postalCode: clean(raw.postalCode),
      countryCode: country!,
      phone: clean(raw.phone),
    },
    shipToIssue: null,
  };
}
