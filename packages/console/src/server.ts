import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { join } from 'node:path';
import axios, { type AxiosInstance } from 'axios';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Kafka } from 'kafkajs';
import { allStreams, EventCodec, topicName } from '@postsale/contracts';
import {
  buildTimeline, DEFAULT_HANDOFF_DEADLINES, describeDeadLetter, describeTopics, findOrderIds, groupLags, integrityReport, listDeadLetters,
  orderJourney, orderKafkaRecords, partitionLags, describeInbox, redrive, redriveDryRun, replay, replayDryRun, serviceInboxProbe, showMoney, streamIntegrity, type OperatorConfig, type StageReport,
} from '@postsale/cli';
import { createKafka, createLogger, type Logger } from '@postsale/runtime';
import { AuditLog, type AuditEntry } from './audit';
import type { ConsoleConfig } from './config';
import { html, Html } from './html';
import { maskPersonal } from './mask';
import { newSession, openSession, parseCookies, REVEAL_TTL_MS, sameSecret, sealSession, SESSION_COOKIE, SESSION_TTL_MS, type Role, type Session } from './session';

type ServiceName = 'ingest' | 'fulfillment' | 'sales' | 'payouts';
const SERVICES: ServiceName[] = ['ingest', 'fulfillment', 'sales', 'payouts'];

export interface ConsoleDeps {
  config: ConsoleConfig;
  audit: AuditLog;
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  sessionSecret: string;
}

class HttpProblem extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const PUBLIC_DIR = join(__dirname, '..', 'public');
const NAME = /^[\w.@-]{1,60}$/;

export function createConsoleApp(deps: ConsoleDeps): express.Express {
  const { config, audit, logger } = deps;
  const urls: Record<ServiceName, string> = { ingest: config.INGEST_URL, fulfillment: config.FULFILLMENT_URL, sales: config.SALES_URL, payouts: config.PAYOUTS_URL };
  const operatorConfig: OperatorConfig = {
    KAFKA_BROKERS: config.KAFKA_BROKERS, SCHEMA_REGISTRY_URL: config.SCHEMA_REGISTRY_URL, TOPIC_NAMESPACE: config.TOPIC_NAMESPACE,
    INGEST_URL: urls.ingest, FULFILLMENT_URL: urls.fulfillment, SALES_URL: urls.sales, PAYOUTS_URL: urls.payouts, POSTSALE_ADMIN_TOKEN: config.ADMIN_TOKEN,
    KAFKA_SASL_MECHANISM: config.KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME: config.KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD: config.KAFKA_SASL_PASSWORD,
    KAFKA_SSL: config.KAFKA_SSL, KAFKA_SSL_CA_FILE: config.KAFKA_SSL_CA_FILE,
  };
  // Replay and redrive dry runs ask each consuming service's inbox (GET /admin/inbox/held) what it already applied.
  const inboxProbe = serviceInboxProbe(operatorConfig, deps.codec);
  // The services' admin token stays on this server; the person's name travels as x-operator so the service records it.
  const svc = (service: ServiceName, who = 'console'): AxiosInstance =>
    axios.create({ baseURL: urls[service], timeout: 10_000, validateStatus: () => true, headers: { authorization: `Bearer ${config.ADMIN_TOKEN}`, 'x-operator': who } });
  const getJson = async <T>(service: ServiceName, path: string, params?: Record<string, unknown>): Promise<T> => {
    const r = await svc(service).get(path, { params });
    if (r.status !== 200) throw new HttpProblem(502, `${service} answered ${r.status} for ${path}: ${errorText(r.data)}`);
    return r.data as T;
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use((_req, res, next) => {
    res.set({
      'content-security-policy': "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'x-content-type-options': 'nosniff',
      // same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on our own forms, and the origin check needs it
      'referrer-policy': 'same-origin',
      'cache-control': 'no-store',
    });
    next();
  });
  app.use('/static', express.static(PUBLIC_DIR, { index: false, maxAge: '1h' }));
  app.get('/favicon.ico', (_req, res) => res.redirect(301, '/static/favicon.svg'));
  app.get('/healthz', (_req, res) => res.json({ ok: true }));
  app.get('/readyz', async (_req, res) => {
    const answers = await Promise.all(SERVICES.map((s) => axios.get(`${urls[s]}/healthz`, { timeout: 2000, validateStatus: () => true }).then((r) => r.status === 200, () => false)));
    // Ready whatever the services' health: the console is where an operator looks when one of them is down.
    res.json({ ok: true, services: Object.fromEntries(SERVICES.map((s, i) => [s, answers[i] ? 'up' : 'down'])) });
  });
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));

  // --- sessions, CSRF, roles ---
  const isLocal = (req: Request) => ['localhost', '127.0.0.1', '::1', '[::1]'].includes(req.hostname);
  const setSession = (req: Request, res: Response, session: Session | undefined) => {
    res.cookie(SESSION_COOKIE, session ? sealSession(session, deps.sessionSecret) : '', {
      httpOnly: true, sameSite: 'strict', secure: !isLocal(req), path: '/', maxAge: session ? SESSION_TTL_MS : 0,
    });
  };
  const session = (res: Response) => res.locals.session as Session;

  // A state-changing request from another site's page is refused outright (also covers the sign-in form, which has
  // no session yet to carry a CSRF token). Requests without an Origin (curl, tests) still need session and token.
  app.use((req, res, next) => {
    const origin = req.get('origin');
    if (req.method === 'POST' && origin) {
      let host = '';
      try {
        host = new URL(origin).host;
      } catch {
        // "null" or garbage: not this console
      }
      if (host !== req.get('host')) return res.status(403).send(problemPage(undefined, 403, 'This form did not come from the console.').value);
    }
    next();
  });

  app.get('/login', (req, res) => {
    if (openSession(parseCookies(req.headers.cookie)[SESSION_COOKIE], deps.sessionSecret)) return res.redirect(303, '/');
    res.send(loginPage().value);
  });
  app.post('/login', async (req, res) => {
    const name = String(req.body?.name ?? '').trim();
    const token = String(req.body?.token ?? '');
    const role: Role | undefined = sameSecret(token, config.CONSOLE_ADMIN_TOKEN) ? 'admin' : sameSecret(token, config.CONSOLE_OPERATOR_TOKEN) ? 'operator' : undefined;
    if (!NAME.test(name) || !role) {
      logger.warn({ nameValid: NAME.test(name) }, 'console sign-in refused');
      return res.status(401).send(loginPage(!NAME.test(name) ? 'Your name: letters, digits, . _ @ - (up to 60).' : 'That credential is not valid.').value);
    }
    setSession(req, res, newSession(name, role));
    logger.info({ who: name, role }, 'console sign-in');
    res.redirect(303, '/');
  });

  app.use((req, res, next) => {
    const s = openSession(parseCookies(req.headers.cookie)[SESSION_COOKIE], deps.sessionSecret);
    if (!s) {
      if (req.method === 'GET') return res.redirect(303, '/login');
      return res.status(401).send(problemPage(undefined, 401, 'Sign in first.').value);
    }
    res.locals.session = s;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // CSRF: the form must echo the session's token; a cross-site form (which SameSite=Strict already starves of
      // the cookie) cannot know it.
      const given = String(req.body?._csrf ?? '');
      if (!given || !sameSecret(given, s.csrf)) return res.status(403).send(problemPage(s, 403, 'The form is stale or did not come from this console (CSRF token mismatch). Reload the page and try again.').value);
    }
    next();
  });
  const requireAdmin = (_req: Request, res: Response, next: NextFunction) => {
    if (session(res).role !== 'admin') return res.status(403).send(problemPage(session(res), 403, 'Your credential is read-only: this action needs the admin credential.').value);
    next();
  };
  const reasonOf = (req: Request): string => {
    const reason = String(req.body?.reason ?? '').trim();
    if (reason.length < 3 || reason.length > 500) throw new HttpProblem(400, 'Give a reason (3 to 500 characters): it is recorded with the action.');
    return reason;
  };

  app.post('/logout', (req, res) => {
    setSession(req, res, undefined);
    res.redirect(303, '/login');
  });

  const page = (res: Response, title: string, body: Html, current: string) => res.send(layout(session(res), title, body, current).value);

  // --- home ---
  app.get('/', async (_req, res) => {
    const metrics = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => {
      const r = await axios.get(`${urls[s]}/metrics`, { timeout: 5000, validateStatus: () => true, responseType: 'text' }).catch(() => undefined);
      return [s, r?.status === 200 ? parsePrometheus(String(r.data)) : undefined] as const;
    }))) as Record<ServiceName, Sample[] | undefined>;
    const sum = (s: ServiceName, name: string, filter: (l: Record<string, string>) => boolean = () => true) =>
      metrics[s]?.filter((m) => m.name === name && filter(m.labels)).reduce((n, m) => n + m.value, 0);
    const intents = (metrics.payouts ?? []).filter((m) => m.name === 'payouts_intents' && m.value > 0);
    const inFlightIntents = intents.filter((m) => !['SENT', 'CANCELLED', 'SKIPPED', 'OFFSET', 'DRY_RUN'].includes(m.labels.status ?? '')).reduce((n, m) => n + m.value, 0);
    const held = sum('payouts', 'payouts_intents', (l) => l.status === 'HELD');
    const stuck = await integrityReport(operatorConfig).catch(() => [] as StageReport[]);
    const lags = await groupLags(deps.kafka, allStreams().map((s) => topicName(s, config.TOPIC_NAMESPACE))).catch(() => undefined);
    const deadLettered = SERVICES.reduce((n, s) => n + (sum(s, 'events_dead_lettered_total') ?? 0), 0);
    const figure = (label: string, value: number | undefined, href: string, note?: string) =>
      html`<li class="figure"><a href="${href}"><span class="value">${value === undefined ? '—' : value}</span><span class="label">${label}</span></a>${note ? html`<small>${note}</small>` : ''}</li>`;
    page(res, 'Home', html`
      <h1>Pipeline at a glance</h1>
      <p class="hint">From the services' <code>/metrics</code>, their integrity reports and the Kafka consumer groups. A dash means the service did not answer.</p>
      <h2>Orders in flight, per stage</h2>
      <ul class="figures">
        ${figure('ingest: deliveries pending', sum('ingest', 'ingest_pending_deliveries'), '/stuck?stage=ingest')}
        ${figure('ingest: deliveries parked', sum('ingest', 'ingest_parked_deliveries'), '/stuck?stage=ingest')}
        ${figure('fulfillment: in review', sum('fulfillment', 'fulfillment_review_queue_size'), '/review')}
        ${figure('payouts: intents not yet paid', metrics.payouts ? inFlightIntents : undefined, '/payouts')}
        ${SERVICES.map((s) => figure(`${s}: events waiting in outbox`, sum(s, 'outbox_unpublished_events'), '/kafka'))}
      </ul>
      <h2>What needs a person</h2>
      <ul class="figures">
        ${figure('orders past their stage deadline', stuck.reduce((n, r) => n + r.violations.length, 0), '/stuck')}
        ${figure('payouts held', held ?? (metrics.payouts ? 0 : undefined), '/payouts?status=HELD')}
        ${figure('events dead-lettered (since start)', deadLettered, '/kafka#dead-letters')}
        ${figure('consumer lag (messages)', lags ? Number(lags.reduce((n, l) => n + l.lag, 0n)) : undefined, '/kafka')}
      </ul>
      ${lags ? html`<h2>Lag per consumer group</h2><table><caption>End offset minus committed offset, per group and topic</caption>
        <thead><tr><th scope="col">group</th><th scope="col">topic</th><th scope="col">lag</th><th scope="col">state</th></tr></thead>
        <tbody>${lags.map((l) => html`<tr><td>${l.group}</td><td>${l.topic}</td><td class="num">${String(l.lag)}</td><td>${l.state}</td></tr>`)}</tbody></table>` : html`<p class="error">Kafka did not answer.</p>`}
    `, '/');
  });

  // --- order journey ---
  app.get('/orders', async (req, res) => {
    const q = String(req.query.q ?? '').trim();
    if (q) {
      const ids = await findOrderIds(operatorConfig, q);
      if (ids.length === 1) return res.redirect(303, `/orders/${encodeURIComponent(ids[0]!)}`);
      return page(res, 'Find an order', html`${searchForm(q)}${ids.length === 0
        ? html`<p role="status">No service knows an order matching <strong>${q}</strong>.</p>`
        : html`<p role="status">${ids.length} orders match:</p><ul>${ids.map((id) => html`<li><a href="/orders/${id}">${id}</a></li>`)}</ul>`}`, '/orders');
    }
    page(res, 'Find an order', searchForm(''), '/orders');
  });

  app.get('/orders/:orderId', async (req, res) => {
    const orderId = String(req.params.orderId);
    if (!/^[\w.:-]{1,200}$/.test(orderId)) throw new HttpProblem(400, 'Not an order id.');
    const journey = await orderJourney(operatorConfig, orderId);
    const actions = await audit.forOrder(orderId);
    const withKafka = req.query.kafka === '1';
    const kafkaRecords = withKafka ? await orderKafkaRecords(deps.kafka, deps.codec, config.TOPIC_NAMESPACE, orderId) : [];
    const timeline = buildTimeline(orderId, journey, { actions, kafka: kafkaRecords });
    const s = session(res);
    const revealed = (s.reveals[orderId] ?? 0) > Date.now();
    const shown = revealed ? journey : maskPersonal(journey);
    const ingest = shown.ingest as { received?: { buyer?: unknown; shipTo?: unknown } } | undefined;
    const fulfillment = shown.fulfillment as { shipTo?: unknown } | undefined;
    const done = typeof req.query.done === 'string' && /^[a-z-]{1,30}$/.test(req.query.done) ? req.query.done : undefined;
    const sum = timeline.summary;
    page(res, `Order ${orderId}`, html`
      ${searchForm('')}
      ${done ? html`<p class="notice" role="status">Done: ${done}. The action is recorded below.</p>` : ''}
      <h1>Order <code>${orderId}</code></h1>
      <dl class="summary">
        <dt>marketplace</dt><dd>${sum.marketplace ?? '—'} <code>${sum.externalOrderId ?? ''}</code></dd>
        <dt>seller</dt><dd>${sum.sellerId ?? '—'}</dd>
        ${Object.entries(sum.states).map(([service, state]) => html`<dt>${service}</dt><dd>${state}</dd>`)}
        ${sum.breakdown ? html`<dt>money</dt><dd class="money">${sum.breakdown}</dd>` : ''}
        ${sum.payouts.map((p) => html`<dt>payout to ${p.recipient}</dt><dd>${p.amount} ${p.status}${p.paid ? ` (paid ${p.paid})` : ''}</dd>`)}
      </dl>
      <h2 id="timeline">Timeline</h2>
      <p class="hint">${timeline.entries.length} events across the services, oldest first.
        ${withKafka ? html`Kafka records included (<a href="/orders/${orderId}">hide</a>).` : html`<a href="/orders/${orderId}?kafka=1#timeline">Include the order's Kafka records (topic, partition, offset)</a>.`}</p>
      <table class="timeline"><caption>Everything the services and operators did with this order</caption>
        <thead><tr><th scope="col">time</th><th scope="col">source</th><th scope="col">event</th><th scope="col">detail</th><th scope="col">keys</th></tr></thead>
        <tbody>${timeline.entries.map((e) => html`<tr class="src-${e.source}">
          <td><time datetime="${e.at}">${e.at.replace('T', ' ').replace('Z', '')}</time></td><td>${e.source}</td><td class="event">${e.event}</td>
          <td>${e.detail ?? ''}${e.actor ? html`<br><strong>by ${e.actor}</strong>${e.reason ? html`: “${e.reason}”` : ''}` : ''}</td>
          <td class="keys">${Object.entries(e.keys ?? {}).map(([k, v]) => html`<span><b>${k}</b> ${v}</span> `)}</td></tr>`)}</tbody></table>
      <h2>Personal data</h2>
      ${revealed ? html`<p class="notice">Shown unmasked until ${new Date(s.reveals[orderId]!).toISOString()} (your reveal is in the audit).</p>`
        : html`<p class="hint">Masked. ${s.role === 'admin' ? 'Revealing it is recorded with your reason.' : 'Only an admin can reveal it.'}</p>`}
      <pre class="json">${JSON.stringify({ buyer: ingest?.received?.buyer ?? null, shipTo: fulfillment?.shipTo ?? ingest?.received?.shipTo ?? null }, null, 2)}</pre>
      ${s.role === 'admin' && !revealed ? html`<form method="post" action="/orders/${orderId}/reveal" class="inline">${csrf(s)}
        <label for="reveal-reason">Reason to reveal</label><input id="reveal-reason" name="reason" required minlength="3" maxlength="500">
        <button type="submit" class="write">Reveal personal data</button></form>` : ''}
      <h2>What each service says</h2>
      ${SERVICES.map((service) => html`<details><summary>${service}</summary><pre class="json">${JSON.stringify(shown[service], null, 2)}</pre></details>`)}
    `, '/orders');
  });

  app.post('/orders/:orderId/reveal', requireAdmin, async (req, res) => {
    const orderId = String(req.params.orderId);
    const reason = reasonOf(req);
    const s = session(res);
    await audit.record({ who: s.name, role: s.role, action: 'reveal-personal-data', orderId, reason, outcome: 'revealed' });
    s.reveals[orderId] = Date.now() + REVEAL_TTL_MS;
    setSession(req, res, s);
    res.redirect(303, `/orders/${encodeURIComponent(orderId)}`);
  });

  // --- stuck work ---
  app.get('/stuck', async (req, res) => {
    const codec = deps.codec;
    const reports = [
      ...(await integrityReport(operatorConfig)),
      ...(await streamIntegrity(deps.kafka, codec, DEFAULT_HANDOFF_DEADLINES).catch((error: Error) => [{ service: 'kafka', stage: 'hand-offs', violations: [], error: error.message }] as StageReport[])),
    ];
    const stage = typeof req.query.stage === 'string' ? req.query.stage : '';
    const state = typeof req.query.state === 'string' ? req.query.state.trim() : '';
    const minAge = Number(req.query.minAge ?? 0) || 0;
    const rows = reports.flatMap((r) => r.violations.map((v) => ({ ...v, stage: r.stage, service: r.service })))
      .filter((v) => (!stage || v.stage === stage || v.service === stage) && (!state || v.state.includes(state)) && v.ageSeconds >= minAge)
      .sort((a, b) => b.ageSeconds - a.ageSeconds);
    const stages = [...new Set(reports.map((r) => r.stage))];
    // Attempts and the last error come from fulfillment's order view (its report names only the state); the first 50.
    const details = new Map<string, { attempts: number; lastError?: string }>();
    await Promise.all(rows.filter((v) => v.service === 'fulfillment').slice(0, 50).map(async (v) => {
      const r = await svc('fulfillment').get(`/admin/orders/${encodeURIComponent(v.orderId)}`);
      if (r.status !== 200) return;
      const f = r.data as { purchaseAttempts: number; attempts?: Array<{ message?: string | null; outcome?: string | null }>; reason?: { code: string } | null };
      const last = [...(f.attempts ?? [])].reverse().find((a) => a.message);
      details.set(v.orderId, { attempts: f.purchaseAttempts, lastError: last?.message ?? f.reason?.code ?? undefined });
    }));
    page(res, 'Stuck work', html`
      <h1>Stuck work</h1>
      <p class="hint">Every order not in a terminal state past its stage's deadline, as each service computes it, plus the hand-offs between services read from the topics.</p>
      <form method="get" action="/stuck" class="filters">
        <label for="f-stage">Stage</label><select id="f-stage" name="stage"><option value="">all</option>${stages.map((s) => html`<option value="${s}"${s === stage ? html` selected` : ''}>${s}</option>`)}</select>
        <label for="f-state">State contains</label><input id="f-state" name="state" value="${state}">
        <label for="f-age">Older than (s)</label><input id="f-age" name="minAge" type="number" min="0" value="${minAge || ''}">
        <button type="submit">Filter</button></form>
      ${reports.filter((r) => r.error).map((r) => html`<p class="error">${r.service}: ${r.error}</p>`)}
      <ul class="figures">${reports.map((r) => html`<li class="figure"><span class="value">${r.violations.length}</span><span class="label">${r.stage}</span></li>`)}</ul>
      <table><caption>${rows.length} stuck order(s), oldest first</caption>
        <thead><tr><th scope="col">stage</th><th scope="col">order</th><th scope="col">state</th><th scope="col">since</th><th scope="col">age</th><th scope="col">deadline</th><th scope="col">attempts</th><th scope="col">last error / reason</th></tr></thead>
        <tbody>${rows.map((v) => html`<tr><td>${v.stage}</td><td><a href="/orders/${v.orderId}">${v.orderId}</a></td><td>${v.state}</td><td>${v.since}</td>
          <td class="num">${formatAge(v.ageSeconds)}</td><td class="num">${formatAge(v.deadlineSeconds)}</td>
          <td class="num">${details.get(v.orderId)?.attempts ?? ''}</td><td>${v.reason}${details.get(v.orderId)?.lastError ? html`<br><small>last error: ${details.get(v.orderId)!.lastError}</small>` : ''}</td></tr>`)}</tbody></table>
    `, '/stuck');
  });

  // --- review queue ---
  app.get('/review', async (_req, res) => {
    const s = session(res);
    const queue = await getJson<{ orders: ReviewOrder[] }>('fulfillment', '/admin/review-queue');
    const payouts = (await Promise.all(['HELD', 'FAILED', 'NEEDS_REVIEW', 'RETURNED'].map((status) =>
      getJson<{ payouts: PayoutRow[] }>('payouts', '/admin/payouts', { status }).then((r) => r.payouts)))).flat();
    page(res, 'Review queue', html`
      <h1>Review queue</h1>
      <p class="hint">Orders fulfillment will not buy without a person, with the reason and the numbers behind it. Every action needs a reason; it is recorded and appears in the order's timeline.</p>
      <table class="review"><caption>${queue.orders.length} order(s) in review</caption>
        <thead><tr><th scope="col">order</th><th scope="col">reason</th><th scope="col">numbers</th><th scope="col">since</th>${s.role === 'admin' ? html`<th scope="col">actions</th>` : ''}</tr></thead>
        <tbody>${queue.orders.map((o) => html`<tr>
          <td><a href="/orders/${o.orderId}">${o.orderId}</a><br><small>${o.marketplace} ${o.externalOrderId} · seller ${o.sellerId} · attempts ${o.purchaseAttempts}</small></td>
          <td><strong>${o.reason?.code ?? '—'}</strong></td>
          <td><dl class="numbers">${Object.entries(o.reason?.details ?? {}).filter(([, v]) => typeof v !== 'object').map(([k, v]) => html`<dt>${k}</dt><dd>${String(v)}</dd>`)}
            <dt>sale</dt><dd>${o.saleAmount ? `${o.saleAmount.amount} ${o.saleAmount.currency}` : '—'}</dd></dl></td>
          <td>${o.stateSince}</td>
          ${s.role === 'admin' ? html`<td class="actions">${reviewActions(s, o)}</td>` : ''}</tr>`)}</tbody></table>
      <h2>Payouts needing a person</h2>
      <table><caption>${payouts.length} payout(s) held, failed, returned or in review</caption>
        <thead><tr><th scope="col">payout</th><th scope="col">order</th><th scope="col">recipient</th><th scope="col">status</th><th scope="col">amount</th><th scope="col">why</th>${s.role === 'admin' ? html`<th scope="col">actions</th>` : ''}</tr></thead>
        <tbody>${payouts.map((p) => html`<tr><td><code>${p.id}</code></td><td><a href="/orders/${p.orderId}">${p.orderId}</a></td><td>${p.recipient}</td><td>${p.status}</td>
          <td class="num">${showMoney(p.payable ?? p.amount)}</td><td>${p.hold ? JSON.stringify(p.hold) : p.skipReason ?? ''}</td>
          ${s.role === 'admin' ? html`<td class="actions">${payoutActions(s, p, payoutActionsFor(p))}</td>` : ''}</tr>`)}</tbody></table>
    `, '/review');
  });

  app.post('/review/:orderId/:action', requireAdmin, async (req, res) => {
    const orderId = String(req.params.orderId);
    const action = String(req.params.action);
    if (!['approve', 'retry', 'mark-purchased', 'cancel'].includes(action)) throw new HttpProblem(404, 'No such action.');
    const reason = reasonOf(req);
    const s = session(res);
    const body = action === 'approve'
      ? { maxSupplierCost: { amount: String(req.body.amount ?? '').trim(), currency: String(req.body.currency ?? '').trim().toUpperCase() } }
      : action === 'mark-purchased'
        ? { supplierOrderId: String(req.body.supplierOrderId ?? '').trim(), supplierCost: { amount: String(req.body.amount ?? '').trim(), currency: String(req.body.currency ?? '').trim().toUpperCase() } }
        // fulfillment records the reason of a cancel in its own audit too (the order then has a terminal state everywhere)
        : action === 'cancel' ? { reason } : {};
    const before = await svc('fulfillment').get(`/admin/orders/${encodeURIComponent(orderId)}`);
    const r = await svc('fulfillment', s.name).post(`/admin/orders/${encodeURIComponent(orderId)}/${action}`, body);
    const ok = r.status === 200;
    await audit.record({
      who: s.name, role: s.role, action, orderId, reason, outcome: ok ? 'done' : `refused (${r.status} ${errorCode(r.data)})`,
      detail: action === 'retry' || action === 'cancel' ? undefined : JSON.stringify(body),
      before: stateOf(before.data), after: ok ? stateOf(r.data) : undefined,
    });
    if (!ok) throw new HttpProblem(r.status === 404 || r.status === 400 ? r.status : 409, `fulfillment refused to ${action} ${orderId}: ${errorText(r.data)}`);
    res.redirect(303, `/orders/${encodeURIComponent(orderId)}?done=${action}#timeline`);
  });

  app.post('/payouts/:id/:action', requireAdmin, async (req, res) => {
    const id = String(req.params.id);
    const action = String(req.params.action);
    if (!['retry', 'cancel'].includes(action)) throw new HttpProblem(404, 'No such action.');
    const reason = reasonOf(req);
    const s = session(res);
    const orderId = String(req.body.orderId ?? '') || undefined;
    // payouts keeps the reason in its own admin audit (x-audit-reason: a header, so printable ASCII only)
    const r = await svc('payouts', s.name).post(`/admin/payouts/${encodeURIComponent(id)}/${action}`, {}, { headers: { 'x-audit-reason': reason.replace(/[^\x20-\x7e]/g, '?') } });
    const ok = r.status >= 200 && r.status < 300;
    await audit.record({ who: s.name, role: s.role, action: `payout-${action}`, orderId, target: id, reason, outcome: ok ? 'done' : `refused (${r.status} ${errorCode(r.data)})`, after: ok ? r.data : undefined });
    if (!ok) throw new HttpProblem(409, `payouts refused to ${action} ${id}: ${errorText(r.data)}`);
    res.redirect(303, orderId ? `/orders/${encodeURIComponent(orderId)}?done=payout-${action}#timeline` : '/review');
  });

  // --- payouts ---
  app.get('/payouts', async (req, res) => {
    const status = typeof req.query.status === 'string' && /^[A-Z_]{1,20}$/.test(req.query.status) ? req.query.status : '';
    const list = await getJson<{ payouts: PayoutRow[] }>('payouts', '/admin/payouts', { ...(status ? { status } : {}), limit: 500 });
    const all = status ? (await getJson<{ payouts: PayoutRow[] }>('payouts', '/admin/payouts', { limit: 1000 })).payouts : list.payouts;
    const sellers = [...new Set(all.map((p) => p.sellerId))].sort();
    const balances = await Promise.all(sellers.map((seller) => getJson<SellerBalance>('payouts', `/admin/sellers/${encodeURIComponent(seller)}/balance`)));
    const byStatus = new Map<string, number>();
    for (const p of all) byStatus.set(p.status, (byStatus.get(p.status) ?? 0) + 1);
    page(res, 'Payouts', html`
      <h1>Payouts</h1>
      <ul class="figures">${[...byStatus].map(([st, n]) => html`<li class="figure"><a href="/payouts?status=${st}"><span class="value">${n}</span><span class="label">${st}</span></a></li>`)}</ul>
      <form method="get" action="/payouts" class="filters"><label for="p-status">Status</label>
        <select id="p-status" name="status"><option value="">all</option>${['HELD', 'DUE', 'SUBMITTED', 'SENT', 'FAILED', 'RETURNED', 'CANCELLED', 'SKIPPED', 'OFFSET', 'NEEDS_REVIEW'].map((st) => html`<option${st === status ? html` selected` : ''}>${st}</option>`)}</select>
        <button type="submit">Show</button></form>
      <table><caption>${list.payouts.length} payout(s)${status ? ` with status ${status}` : ''}</caption>
        <thead><tr><th scope="col">order</th><th scope="col">recipient</th><th scope="col">status</th><th scope="col">owed</th><th scope="col">paid</th><th scope="col">PayPal item</th><th scope="col">since</th>${session(res).role === 'admin' ? html`<th scope="col">actions</th>` : ''}</tr></thead>
        <tbody>${list.payouts.map((p) => html`<tr class="payout" data-payout="${p.id}"><td><a href="/orders/${p.orderId}">${p.orderId}</a></td><td>${p.recipient}</td><td>${p.status}</td>
          <td class="num">${showMoney(p.payable ?? p.amount)}</td><td class="num">${p.payout ? showMoney(p.payout) : ''}</td>
          <td>${(p.items ?? []).map((i) => html`<div><code>${i.senderItemId}</code> ${i.status}${unclaimedCountdown(i)}</div>`)}</td>
          <td>${p.statusSince}${['RETURNED', 'REFUNDED', 'REVERSED', 'OFFSET'].includes(p.status) ? html`<br><a href="/orders/${p.orderId}#timeline">ledger reversal</a>` : ''}</td>
          ${session(res).role === 'admin' ? html`<td class="actions">${payoutActions(session(res), p, payoutActionsFor(p))}</td>` : ''}</tr>`)}</tbody></table>
      <h2>Balance per seller</h2>
      <table><caption>What is pending, paid and owed back, per seller and currency</caption>
        <thead><tr><th scope="col">seller</th><th scope="col">currency</th><th scope="col">pending payout</th><th scope="col">paid</th><th scope="col">clawback owed</th></tr></thead>
        <tbody>${balances.flatMap((b) => b.balances.map((x) => html`<tr><td>${b.sellerId}</td><td>${x.currency}</td>
          <td class="num">${showMoney({ amountMinor: x.pendingPayoutMinor, currency: x.currency })}</td><td class="num">${showMoney({ amountMinor: x.paidMinor, currency: x.currency })}</td>
          <td class="num">${showMoney({ amountMinor: x.clawbackOwedMinor, currency: x.currency })}</td></tr>`))}</tbody></table>
    `, '/payouts');
  });

  // --- ledger ---
  app.get('/ledger', async (req, res) => {
    const tb = await getJson<TrialBalance>('sales', '/admin/ledger/trial-balance');
    const payouts = await getJson<{ payouts: PayoutRow[] }>('payouts', '/admin/payouts', { limit: 1000 });
    const sellers = [...new Set(payouts.payouts.map((p) => p.sellerId))].sort();
    const seller = typeof req.query.seller === 'string' && req.query.seller ? req.query.seller : sellers[0] ?? '';
    const statement = seller ? await getJson<Statement>('sales', `/admin/sellers/${encodeURIComponent(seller)}/statement`) : undefined;
    // Each journal entry with its postings, for the statement's latest 20 orders (sales answers per order).
    const recentOrders = [...new Set((statement?.lines ?? []).map((l) => l.orderId).reverse())].slice(0, 20);
    const journals = await Promise.all(recentOrders.map(async (orderId) => {
      const r = await svc('sales').get(`/admin/sales/${encodeURIComponent(orderId)}`);
      return { orderId, journal: r.status === 200 ? (r.data as { journal: JournalEntry[] }).journal : [] };
    }));
    page(res, 'Ledger', html`
      <h1>Ledger</h1>
      <h2>Trial balance <small>${tb.balanced ? 'balanced' : 'NOT BALANCED'}</small></h2>
      ${tb.currencies.map((c) => html`<table><caption>${c.currency}: total ${showMoney({ amountMinor: c.totalMinor, currency: c.currency })}</caption>
        <thead><tr><th scope="col">account</th><th scope="col">balance</th></tr></thead>
        <tbody>${c.accounts.map((a) => html`<tr><td>${a.account}</td><td class="num">${showMoney({ amountMinor: a.balanceMinor, currency: c.currency })}</td></tr>`)}</tbody></table>`)}
      <h2>Seller statement</h2>
      <form method="get" action="/ledger" class="filters"><label for="l-seller">Seller</label>
        <input id="l-seller" name="seller" value="${seller}" list="sellers"><datalist id="sellers">${sellers.map((x) => html`<option value="${x}">`)}</datalist>
        <button type="submit">Show</button>
        ${seller ? html`<a class="button" href="/ledger/statement.csv?seller=${encodeURIComponent(seller)}" download>Download CSV</a>` : ''}</form>
      ${statement ? html`<table><caption>${statement.lines.length} line(s) for ${statement.sellerId}</caption>
        <thead><tr><th scope="col">posted</th><th scope="col">kind</th><th scope="col">order</th><th scope="col">sale</th><th scope="col">marketplace fee</th><th scope="col">supplier</th><th scope="col">commission</th><th scope="col">seller net</th></tr></thead>
        <tbody>${statement.lines.map((l) => html`<tr><td>${l.postedAt}</td><td>${l.kind}</td><td><a href="/orders/${l.orderId}">${l.orderId}</a></td>
          ${(['saleAmount', 'marketplaceFee', 'supplierCost', 'platformCommission', 'sellerNetProfit'] as const).map((k) => html`<td class="num">${showMoney({ amountMinor: l.amounts[k], currency: l.currency })}</td>`)}</tr>`)}</tbody></table>` : ''}
      ${journals.length ? html`<h2>Journal entries</h2><table class="journal"><caption>Each entry with its postings, for the statement's latest ${journals.length} order(s)</caption>
        <thead><tr><th scope="col">posted</th><th scope="col">order</th><th scope="col">entry</th><th scope="col">postings</th></tr></thead>
        <tbody>${journals.flatMap(({ orderId, journal }) => journal.map((j) => html`<tr><td>${j.postedAt}</td><td><a href="/orders/${orderId}">${orderId}</a></td>
          <td><strong>${j.kind}</strong> ${j.description}</td><td><ul class="postings">${j.postings.map((p) => html`<li><span>${p.account}</span> <span class="num">${showMoney(p.amount)}</span></li>`)}</ul></td></tr>`))}</tbody></table>` : ''}
    `, '/ledger');
  });

  app.get('/ledger/statement.csv', async (req, res) => {
    const seller = String(req.query.seller ?? '');
    if (!/^[\w.:-]{1,200}$/.test(seller)) throw new HttpProblem(400, 'Name a seller.');
    const r = await svc('sales').get(`/admin/sellers/${encodeURIComponent(seller)}/statement`, { headers: { accept: 'text/csv' }, responseType: 'text' });
    if (r.status !== 200) throw new HttpProblem(502, `sales answered ${r.status}`);
    res.type('text/csv').attachment(`statement-${seller}.csv`).send(String(r.data));
  });

  // --- kafka ---
  const kafkaPage = async (res: Response, result?: Html) => {
    const topics = await describeTopics(deps.kafka, config.TOPIC_NAMESPACE);
    const letters = (await listDeadLetters(deps.kafka, config.TOPIC_NAMESPACE)).filter((l) => !l.redriven);
    const decoded = await Promise.all(letters.map(async (l) => ({ letter: l, event: (await describeDeadLetter(l, deps.codec)) as { type?: string; eventId?: string } | null })));
    const s = session(res);
    const streamTopics = topics.filter((t) => !t.topic.includes('.dlq'));
    const perPartition = await partitionLags(deps.kafka, streamTopics.map((t) => t.topic));
    const groups = [...new Set(topics.flatMap((t) => t.groups.map((g) => g.group)))].sort();
    page(res, 'Kafka', html`
      <h1>Kafka</h1>
      ${result ?? ''}
      <table><caption>Topics, partitions, messages and each consumer group's lag</caption>
        <thead><tr><th scope="col">topic</th><th scope="col">partitions</th><th scope="col">messages</th><th scope="col">group: lag (state)</th></tr></thead>
        <tbody>${topics.map((t) => html`<tr><td>${t.topic}</td><td class="num">${t.partitions}</td><td class="num">${String(t.messages)}</td>
          <td>${t.groups.map((g) => html`<div>${g.group}: <strong>${String(g.lag)}</strong> (${g.state})</div>`)}</td></tr>`)}</tbody></table>
      <details><summary>Lag per group and partition</summary>
        <table><caption>Committed offset, end offset and lag of every partition each group consumes</caption>
        <thead><tr><th scope="col">group</th><th scope="col">topic</th><th scope="col">partition</th><th scope="col">committed</th><th scope="col">end</th><th scope="col">lag</th></tr></thead>
        <tbody>${perPartition.map((p) => html`<tr><td>${p.group}</td><td>${p.topic}</td><td class="num">${p.partition}</td><td class="num">${p.committed}</td><td class="num">${p.end}</td><td class="num">${p.lag}</td></tr>`)}</tbody></table></details>
      <h2 id="dead-letters">Dead letters</h2>
      <table><caption>${letters.length} dead letter(s) not yet redriven</caption>
        <thead><tr><th scope="col">id</th><th scope="col">event</th><th scope="col">reason</th><th scope="col">from</th><th scope="col">group</th><th scope="col">failed at</th><th scope="col">redrive</th></tr></thead>
        <tbody>${decoded.map(({ letter: l, event }, i) => html`<tr class="dead-letter"><td><code>${l.id}</code></td><td>${event?.type ?? 'undecodable'}${event?.eventId ? html`<br><small>eventId ${event.eventId}</small>` : ''}${l.key ? html`<br><a href="/orders/${l.key}">${l.key}</a>` : ''}</td>
          <td><strong>${l.code}</strong> ${l.reason}</td><td>${l.originalTopic} p${l.originalPartition}@${l.originalOffset}</td><td>${l.group}</td><td>${l.failedAt}</td>
          <td><form method="post" action="/kafka/redrive/dry-run" class="inline">${csrf(s)}<input type="hidden" name="id" value="${l.id}"><button type="submit" aria-label="Dry run: redrive dead letter ${i + 1}">Dry run</button></form>
          ${s.role === 'admin' ? html`<form method="post" action="/kafka/redrive" class="inline">${csrf(s)}<input type="hidden" name="id" value="${l.id}">
            <label for="rr-${i}">Reason</label><input id="rr-${i}" name="reason" required minlength="3" maxlength="500"><button type="submit" class="write">Redrive</button></form>` : ''}</td></tr>`)}</tbody></table>
      <h2 id="replay">Replay</h2>
      <p class="hint">A dry run moves nothing: it says, per consumer group, how many messages would be delivered again, how many of them the consuming service's inbox already holds (asked of the service: those are skipped as already applied) and whether the group has members (a replay refuses while it has).</p>
      <form method="post" action="/kafka/dry-run" class="filters">${csrf(s)}
        <label for="r-topic">Topic</label><select id="r-topic" name="topic" required>${streamTopics.map((t) => html`<option>${t.topic}</option>`)}</select>
        <label for="r-group">Group</label><select id="r-group" name="group"><option value="">every group of the topic</option>${groups.map((g) => html`<option>${g}</option>`)}</select>
        <label for="r-from">From (offset or ISO time)</label><input id="r-from" name="from" required value="0">
        <button type="submit">Dry run</button></form>
      ${s.role === 'admin' ? html`<form method="post" action="/kafka/replay" class="filters">${csrf(s)}
        <label for="rr-topic">Topic</label><select id="rr-topic" name="topic" required>${streamTopics.map((t) => html`<option>${t.topic}</option>`)}</select>
        <label for="rr-group">Group</label><select id="rr-group" name="group" required>${groups.map((g) => html`<option>${g}</option>`)}</select>
        <label for="rr-from">From</label><input id="rr-from" name="from" required value="0">
        <label for="rr-reason">Reason</label><input id="rr-reason" name="reason" required minlength="3" maxlength="500">
        <button type="submit" class="write">Replay</button></form>` : ''}
    `, '/kafka');
  };
  app.get('/kafka', (_req, res) => kafkaPage(res));

  app.post('/kafka/dry-run', async (req, res) => {
    const topic = String(req.body.topic ?? '');
    const from = String(req.body.from ?? '').trim();
    const group = String(req.body.group ?? '') || undefined;
    if (!allStreams().some((s) => topicName(s, config.TOPIC_NAMESPACE) === topic)) throw new HttpProblem(400, 'Choose one of the pipeline topics.');
    const plan = await replayDryRun(deps.kafka, { topic, from, group }, inboxProbe).catch((error: Error) => { throw new HttpProblem(400, error.message); });
    await kafkaPage(res, html`<section class="result" aria-labelledby="dry-run-title"><h2 id="dry-run-title">Dry run: replay ${plan.topic} from ${plan.from}</h2>
      <table><caption>Nothing was moved. Per group: messages that would be re-delivered, how many of their events the consuming service's inbox already holds (skipped as already applied; asked of the service), and not-yet-consumed ones.</caption>
        <thead><tr><th scope="col">group</th><th scope="col">would re-deliver</th><th scope="col">inbox would skip</th><th scope="col">not yet consumed</th><th scope="col">members</th><th scope="col">a real replay</th><th scope="col">the inbox's answer</th></tr></thead>
        <tbody>${plan.groups.map((g) => html`<tr class="dry-run-group"><td>${g.group}</td><td class="num">${g.redeliver}</td><td class="num">${g.inbox && !g.inbox.error ? g.inbox.held : '—'}</td><td class="num">${g.notYetConsumed}</td><td class="num">${g.members}</td>
          <td>${g.refused ? html`<strong>refused</strong>: ${g.refused}` : 'allowed (group has no members)'}</td><td>${describeInbox(g.inbox)}</td></tr>`)}</tbody></table></section>`);
  });

  app.post('/kafka/redrive/dry-run', async (req, res) => {
    const id = String(req.body.id ?? '');
    const letter = (await listDeadLetters(deps.kafka, config.TOPIC_NAMESPACE)).find((l) => l.id === id && !l.redriven);
    if (!letter) throw new HttpProblem(404, `No dead letter ${id} waiting for a redrive.`);
    const plan = await redriveDryRun(deps.kafka, letter, inboxProbe);
    await kafkaPage(res, html`<section class="result" aria-labelledby="redrive-title"><h2 id="redrive-title">Dry run: redrive ${plan.letter}</h2>
      <p>Nothing was published. A redrive would publish 1 message back to ${plan.topic} (partition ${plan.partition}, same key).</p>
      <table><caption>What each consumer group of the topic would do with it</caption><thead><tr><th scope="col">group</th><th scope="col">outcome</th><th scope="col">asked of its inbox</th></tr></thead>
      <tbody>${plan.groups.map((g) => html`<tr class="redrive-group"><td>${g.group}</td><td>${g.outcome}</td><td>${g.inbox ? `its inbox ${g.inbox}` : 'not asked (undecodable: no event id)'}</td></tr>`)}</tbody></table></section>`);
  });

  app.post('/kafka/replay', requireAdmin, async (req, res) => {
    const s = session(res);
    const reason = reasonOf(req);
    const topic = String(req.body.topic ?? '');
    const group = String(req.body.group ?? '');
    const from = String(req.body.from ?? '').trim();
    if (!allStreams().some((x) => topicName(x, config.TOPIC_NAMESPACE) === topic)) throw new HttpProblem(400, 'Choose one of the pipeline topics.');
    // emptyTimeoutMs 0: a group with members is refused at once rather than waited for.
    const outcome = await replay(deps.kafka, { topic, group, from, emptyTimeoutMs: 0 }).then(
      (plan) => ({ ok: true as const, text: `moved to ${plan.partitions.map((p) => `p${p.partition}@${p.offset}`).join(' ')}` }),
      (error: Error) => ({ ok: false as const, text: error.message }),
    );
    await audit.record({ who: s.name, role: s.role, action: 'replay', target: `${group} on ${topic} from ${from}`, reason, outcome: outcome.ok ? `done: ${outcome.text}` : `refused: ${outcome.text}` });
    if (!outcome.ok) throw new HttpProblem(409, `Replay refused: ${outcome.text}`);
    await kafkaPage(res, html`<p class="notice" role="status">Replay: group ${group} ${outcome.text}. Start the service that runs it; it re-drives from there.</p>`);
  });

  app.post('/kafka/redrive', requireAdmin, async (req, res) => {
    const s = session(res);
    const reason = reasonOf(req);
    const id = String(req.body.id ?? '');
    const letter = (await listDeadLetters(deps.kafka, config.TOPIC_NAMESPACE)).find((l) => l.id === id && !l.redriven);
    if (!letter) throw new HttpProblem(404, `No dead letter ${id} waiting for a redrive.`);
    const n = await redrive(deps.kafka, [letter]);
    await audit.record({ who: s.name, role: s.role, action: 'dlq-redrive', orderId: letter.key ?? undefined, target: id, reason, outcome: `redrove ${n} message(s)` });
    await kafkaPage(res, html`<p class="notice" role="status">Redrove ${id}.</p>`);
  });

  // --- audit ---
  app.get('/audit', async (_req, res) => {
    const entries = await audit.list();
    page(res, 'Audit', html`
      <h1>Audit</h1>
      <table><caption>${entries.length} recorded action(s), newest first: writes and reveals of personal data</caption>
        <thead><tr><th scope="col">when</th><th scope="col">who</th><th scope="col">action</th><th scope="col">order / target</th><th scope="col">reason</th><th scope="col">outcome</th><th scope="col">before → after</th></tr></thead>
        <tbody>${entries.map((e: AuditEntry) => html`<tr><td>${e.at}</td><td>${e.who} (${e.role})</td><td>${e.action}</td>
          <td>${e.orderId ? html`<a href="/orders/${e.orderId}">${e.orderId}</a>` : ''} ${e.target ?? ''}</td><td>${e.reason}</td><td>${e.outcome}</td>
          <td><code>${e.before ? JSON.stringify(e.before) : ''}</code>${e.after ? html` → <code>${JSON.stringify(e.after)}</code>` : ''}</td></tr>`)}</tbody></table>
    `, '/audit');
  });

  app.use((_req, res) => {
    res.status(404).send(problemPage(res.locals.session as Session | undefined, 404, 'No such page.').value);
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = error instanceof HttpProblem ? error.status : 500;
    if (status >= 500) logger.error({ err: error instanceof Error ? { message: error.message } : String(error) }, 'console page failed');
    const message = error instanceof HttpProblem ? error.message : `Something failed: ${error instanceof Error ? error.message : String(error)}`;
    res.status(status).send(problemPage(res.locals.session as Session | undefined, status, message).value);
  });
  return app;
}

// --- views ---

interface ReviewOrder {
  orderId: string; sellerId: string; marketplace: string; externalOrderId: string; state: string; stateSince: string; purchaseAttempts: number;
  reason: { code: string; details: Record<string, unknown> | null } | null;
  saleAmount: { amount: string; currency: string } | null;
  supplierCost: { amount: string; currency: string } | null;
  supplierOrderId: string | null;
}
interface PayoutRow {
  id: string; orderId: string; sellerId: string; recipient: string; status: string; hold: unknown; skipReason: string | null;
  amount: unknown; payable?: unknown; payout?: unknown; statusSince: string;
  items?: Array<{ senderItemId: string; status: string; updatedAt: string; payoutItemId?: string }>;
}
interface SellerBalance { sellerId: string; balances: Array<{ currency: string; clawbackOwedMinor: number; pendingPayoutMinor: number; paidMinor: number }> }
interface TrialBalance { balanced: boolean; currencies: Array<{ currency: string; totalMinor: number; accounts: Array<{ account: string; balanceMinor: number }> }> }
interface JournalEntry { postedAt: string; kind: string; description: string; postings: Array<{ account: string; amount: unknown }> }
interface Statement { sellerId: string; lines: Array<{ postedAt: string; kind: string; orderId: string; currency: string; amounts: Record<string, number> }> }

const csrf = (s: Session) => html`<input type="hidden" name="_csrf" value="${s.csrf}">`;

function reviewActions(s: Session, o: ReviewOrder): Html {
  const id = o.orderId;
  // Suggested ceiling for an approval: the supplier cost the guard saw (an operator can raise or lower it).
  const cost = /^([\d.]+) ([A-Z]{3})$/.exec(String(o.reason?.details?.supplierCost ?? ''));
  const approvable = ['PRICE_ABOVE_MAX', 'FX_RATE_MISSING'].includes(o.reason?.code ?? '');
  return html`
    ${approvable ? html`<form method="post" action="/review/${id}/approve" class="action" aria-label="Approve ${id}">${csrf(s)}
      <label for="ap-amount-${id}">Max supplier cost</label><input id="ap-amount-${id}" name="amount" required pattern="\\d+(\\.\\d+)?" value="${cost?.[1] ?? ''}" size="8">
      <label for="ap-cur-${id}">Currency</label><input id="ap-cur-${id}" name="currency" required pattern="[A-Za-z]{3}" value="${cost?.[2] ?? o.supplierCost?.currency ?? 'USD'}" size="4">
      <label for="ap-reason-${id}">Reason</label><input id="ap-reason-${id}" name="reason" required minlength="3" maxlength="500">
      <button type="submit" class="write">Approve</button></form>` : ''}
    <form method="post" action="/review/${id}/retry" class="action" aria-label="Retry ${id}">${csrf(s)}
      <label for="rt-reason-${id}">Reason</label><input id="rt-reason-${id}" name="reason" required minlength="3" maxlength="500">
      <button type="submit" class="write">Retry</button></form>
    <form method="post" action="/review/${id}/mark-purchased" class="action" aria-label="Mark ${id} purchased">${csrf(s)}
      <label for="mp-so-${id}">Supplier order id</label><input id="mp-so-${id}" name="supplierOrderId" required pattern="\\d{6,24}" size="16">
      <label for="mp-amount-${id}">Cost</label><input id="mp-amount-${id}" name="amount" required pattern="\\d+(\\.\\d+)?" size="8">
      <label for="mp-cur-${id}">Currency</label><input id="mp-cur-${id}" name="currency" required pattern="[A-Za-z]{3}" value="USD" size="4">
      <label for="mp-reason-${id}">Reason</label><input id="mp-reason-${id}" name="reason" required minlength="3" maxlength="500">
      <button type="submit" class="write">Mark purchased</button></form>
    ${o.supplierOrderId ? '' : html`<form method="post" action="/review/${id}/cancel" class="action" aria-label="Cancel ${id}">${csrf(s)}
      <label for="cn-reason-${id}">Reason to cancel</label><input id="cn-reason-${id}" name="reason" required minlength="3" maxlength="500">
      <button type="submit" class="write">Cancel order</button></form>`}`;
}

/** The actions payouts accepts for this payout: retry a FAILED, RETURNED or PayPal-refused one; cancel an UNCLAIMED item. */
function payoutActionsFor(p: PayoutRow): Array<'retry' | 'cancel'> {
  const refused = p.status === 'HELD' && String((p.hold as { reason?: string } | null)?.reason ?? '').startsWith('PAYPAL_REFUSED');
  const unclaimed = p.status === 'SUBMITTED' && (p.items ?? []).some((i) => i.status === 'UNCLAIMED');
  return [...(['FAILED', 'RETURNED'].includes(p.status) || refused ? ['retry' as const] : []), ...(unclaimed ? ['cancel' as const] : [])];
}

function payoutActions(s: Session, p: PayoutRow, actions: Array<'retry' | 'cancel'> = ['retry', 'cancel']): Html {
  return html`${actions.map((action) => html`<form method="post" action="/payouts/${p.id}/${action}" class="action" aria-label="${action === 'retry' ? 'Retry' : 'Cancel'} payout ${p.id}">${csrf(s)}
    <input type="hidden" name="orderId" value="${p.orderId}">
    <label for="po-${action}-${p.id}">Reason</label><input id="po-${action}-${p.id}" name="reason" required minlength="3" maxlength="500">
    <button type="submit" class="write">${action === 'retry' ? 'Retry payout' : 'Cancel unclaimed'}</button></form>`)}`;
}

/** PayPal returns an UNCLAIMED item to the sender after 30 days: show how many are left. */
function unclaimedCountdown(item: { status: string; updatedAt: string }): Html | string {
  if (item.status !== 'UNCLAIMED') return '';
  const left = Math.ceil((Date.parse(item.updatedAt) + 30 * 86_400_000 - Date.now()) / 86_400_000);
  return html` <strong class="countdown">${left > 0 ? `${left} day(s) until PayPal returns it` : 'due back from PayPal'}</strong>`;
}

function searchForm(q: string): Html {
  return html`<form method="get" action="/orders" class="search" role="search">
    <label for="q">Order</label><input id="q" name="q" value="${q}" placeholder="our id, marketplace order id, AliExpress order, buyer email, PayPal batch or item id" size="48" required>
    <button type="submit">Find</button></form>`;
}

const NAV: Array<[string, string]> = [['/', 'Home'], ['/orders', 'Orders'], ['/stuck', 'Stuck work'], ['/review', 'Review queue'], ['/payouts', 'Payouts'], ['/ledger', 'Ledger'], ['/kafka', 'Kafka'], ['/audit', 'Audit']];

function shell(title: string, body: Html, header: Html | string = ''): Html {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${title} · postsale console</title><link rel="icon" href="/static/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/static/console.css"></head>
    <body><a class="skip" href="#main">Skip to content</a>${header}<main id="main" tabindex="-1">${body}</main></body></html>`;
}

function layout(s: Session, title: string, body: Html, current: string): Html {
  return shell(title, body, html`<header><nav aria-label="Main"><span class="brand">postsale console</span><ul>
      ${NAV.map(([href, label]) => html`<li><a href="${href}"${href === current ? html` aria-current="page"` : ''}>${label}</a></li>`)}</ul></nav>
    <div class="who"><span>${s.name} · <strong>${s.role === 'admin' ? 'admin (write)' : 'operator (read-only)'}</strong></span>
      <form method="post" action="/logout" class="inline">${csrf(s)}<button type="submit">Sign out</button></form></div></header>`);
}

function loginPage(error?: string): Html {
  return shell('Sign in', html`<h1>Sign in to the postsale console</h1>
    ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
    <form method="post" action="/login" class="login">
      <label for="name">Your name <small>(recorded with every action)</small></label><input id="name" name="name" required autocomplete="username" pattern="[\\w.@\\-]{1,60}">
      <label for="token">Credential <small>(operator: read; admin: write)</small></label><input id="token" name="token" type="password" required autocomplete="current-password">
      <button type="submit">Sign in</button></form>`);
}

function problemPage(s: Session | undefined, status: number, message: string): Html {
  const body = html`<h1>${status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : status >= 500 ? 'Something failed' : 'Cannot do that'}</h1>
    <p class="error" role="alert">${message}</p><p><a href="/">Home</a></p>`;
  return s ? layout(s, `Error ${status}`, body, '') : shell(`Error ${status}`, body);
}

const formatAge = (seconds: number) => (seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`);
const errorCode = (data: unknown) => String((data as { error?: { code?: string } })?.error?.code ?? '');
const errorText = (data: unknown) => {
  const e = (data as { error?: { code?: string; message?: string } })?.error;
  return e ? `${e.code ?? ''} ${e.message ?? ''}`.trim() : typeof data === 'string' ? data.slice(0, 200) : '';
};
const stateOf = (data: unknown) => {
  const d = data as { state?: string; reason?: { code?: string } | null } | undefined;
  return d?.state ? { state: d.state, reason: d.reason?.code ?? null } : undefined;
};

interface Sample { name: string; labels: Record<string, string>; value: number }
/** The few lines of Prometheus' text format the home page needs: `name{a="b"} value`. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return samples;
}

export interface RunningConsole {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startConsole(config: ConsoleConfig, options: { logger?: Logger } = {}): Promise<RunningConsole> {
  const logger = options.logger ?? createLogger('console', config.LOG_LEVEL);
  const kafka = createKafka({ clientId: 'postsale-console', brokers: config.KAFKA_BROKERS, logger, security: config });
  const codec = EventCodec.connect(config.SCHEMA_REGISTRY_URL, config.TOPIC_NAMESPACE);
  // Outside production a missing secret gets a random one: sessions then last as long as the process.
  const sessionSecret = config.CONSOLE_SESSION_SECRET ?? randomBytes(32).toString('base64url');
  const app = createConsoleApp({ config, audit: new AuditLog(config.CONSOLE_AUDIT_FILE), kafka, codec, logger, sessionSecret });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as { port: number }).port;
  logger.info({ port }, 'console listening');
  return {
    port,
    url: `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
