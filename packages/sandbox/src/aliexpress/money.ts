/** Amounts travel as decimal strings ("12.34") like AliExpress sends them; arithmetic is done in integer cents. */
const DECIMAL = /^\d+(\.\d{1,2})?$/;

export function toCents(amount: string): number {
  if (!DECIMAL.test(amount)) throw new Error(`not a decimal amount: ${JSON.stringify(amount)}`);
  const [whole = '0', fraction = ''] = amount.split('.');
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
}

export function fromCents(cents: number): string {
  const whole = Math.floor(cents / 100);
  const fraction = String(cents % 100).padStart(2, '0');
  return `${whole}.${fraction}`;
}

export function assertDecimal(amount: string): string {
  toCents(amount);
  return amount;
}
