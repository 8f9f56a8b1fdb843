/**
 * Personal data (buyer names, addresses, emails, phones) is shown masked unless an admin reveals one order's with a
 * reason. Masking works on key names, so any answer of the admin APIs can go through it before it is rendered.
 */
const PERSONAL_KEYS = new Set([
  'name', 'fullname', 'firstname', 'lastname', 'buyername', 'email', 'buyeremail', 'payeremail', 'phone', 'phonenumber',
  'line1', 'line2', 'line3', 'street', 'address', 'addressline1', 'addressline2', 'postalcode', 'zip', 'zipcode', 'city',
  'receiver', 'nickname',
]);

export function isPersonalKey(key: string): boolean {
  return PERSONAL_KEYS.has(key.toLowerCase().replace(/[_-]/g, ''));
}

export function maskValue(value: string): string {
  if (value.length === 0) return value;
  const at = value.indexOf('@');
  if (at > 0) return `${value[0]}•••@•••`;
  return `${value[0]}•••`;
}

/** A deep copy with every personal value masked. */
export function maskPersonal<T>(value: T): T {
  const walk = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, walk(x, k)]));
    if (key && isPersonalKey(key) && (typeof v === 'string' || typeof v === 'number')) return maskValue(String(v));
    return v;
  };
  return walk(value) as T;
}
