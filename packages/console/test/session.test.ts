import { escapeHtml, html, maskPersonal, newSession, openSession, parsePrometheus, sealSession } from '../src';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';

describe('console sessions', () => {
  it('when a sealed session comes back unchanged, then it opens with its role and CSRF token', () => {
    const s = newSession('ana', 'operator');
    expect(openSession(sealSession(s, SECRET), SECRET)).toEqual(s);
  });

  it('when anyone edits the cookie (role, signature) or it expired, then it is no session', () => {
    const sealed = sealSession(newSession('ana', 'operator'), SECRET);
    const [payload, signature] = sealed.split('.');
    const promoted = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), role: 'admin' })).toString('base64url');
    expect(openSession(`${promoted}.${signature}`, SECRET)).toBeUndefined();
    expect(openSession(`${payload}.${signature!.slice(1)}x`, SECRET)).toBeUndefined();
    expect(openSession(sealed, 'another-secret-of-thirty-two-characters!!')).toBeUndefined();
    const expired = newSession('ana', 'admin', Date.now() - 9 * 3600_000);
    expect(openSession(sealSession(expired, SECRET), SECRET)).toBeUndefined();
  });

  it('when a reveal has expired, then the session no longer carries it', () => {
    const s = newSession('ana', 'admin');
    s.reveals = { ord_old: Date.now() - 1, ord_new: Date.now() + 60_000 };
    expect(Object.keys(openSession(sealSession(s, SECRET), SECRET)!.reveals)).toEqual(['ord_new']);
  });
});

describe('personal data and HTML', () => {
  it('when an admin answer holds names, addresses, emails and phones, then every one is masked and ids and amounts stay', () => {
    const masked = maskPersonal({
      buyer: { name: 'Camila Rojas', email: 'camila@example.com', externalId: '841569754' },
      shipTo: { fullName: 'Camila Rojas', line1: 'Av. Providencia 1234', phone: '56912345678', postalCode: '7500000', countryCode: 'CL' },
      saleAmount: { amountMinor: 19990, currency: 'CLP' },
    });
    expect(masked).toEqual({
      buyer: { name: 'C•••', email: 'c•••@•••', externalId: '841569754' },
      shipTo: { fullName: 'C•••', line1: 'A•••', phone: '5•••', postalCode: '7•••', countryCode: 'CL' },
      saleAmount: { amountMinor: 19990, currency: 'CLP' },
    });
  });

  it('when a value holds markup, then the page shows it as text', () => {
    expect(html`<td>${'<script>alert(1)</script>'}</td>`.value).toBe('<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>');
    expect(escapeHtml(`"'&`)).toBe('&quot;&#39;&amp;');
  });

  it('reads the Prometheus samples the home page needs', () => {
    expect(parsePrometheus('# HELP x y\npayouts_intents{status="HELD",service="payouts"} 3\noutbox_lag_seconds 0\n')).toEqual([
      { name: 'payouts_intents', labels: { status: 'HELD', service: 'payouts' }, value: 3 },
      { name: 'outbox_lag_seconds', labels: {}, value: 0 },
    ]);
  });
});
