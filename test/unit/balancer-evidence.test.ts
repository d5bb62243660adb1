// The evidence page's parts without a browser: the rows and tallies it shows, its routes and headers on a
// real loopback server, its event stream, and the nginx locations and status bookkeeping it relies on.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RENDER_SETTINGS } from '../helpers/nginx-settings';
import test from 'ava';
import { createApplier } from '../../balancer/apply';
import { ACTIVITY_STREAM_PATH, LIVE_MESSAGE } from '../../balancer/evidence-activity';
import {
  activityEventOf,
  addActivity,
  healthOfChecks,
  instanceRows,
  tally,
  unavailableText,
  type ActivityEvent,
  type EvidenceSnapshot,
} from '../../balancer/evidence-model';
import { consulInstances, createEvidencePage, EVIDENCE_PATHS, type EvidencePage } from '../../balancer/evidence-page';
import { selectUpstreams, type HealthEntry, type Resolution } from '../../balancer/consul-entries';
import { renderNginxConfig, type NginxSettings } from '../../balancer/render';
import type { GatewayTable } from '../../balancer/routing';
import { createStatusStore } from '../../balancer/status';
import type { GatewayView } from '../../balancer/watch';
import type { Logger } from '../../lib/logger';

const entry = (id: string, address: string, port: number, statuses = ['passing', 'passing']): HealthEntry => ({
  Node: { Node: 'node1', Address: '10.9.9.9' },
  Service: { ID: id, Service: 'hello', Address: address, Port: port, Tags: ['urlprefix-=/'] },
  // As Consul reports them: the node's serfHealth first, then the instance's own check(s).
  Checks: statuses.map((Status, i) =>
    i === 0 ? { CheckID: 'serfHealth', Status } : { CheckID: `service:${id}:${i}`, ServiceID: id, Status },
  ),
});

test('rows: Consul instances nginx serves, ones it has not loaded yet, and ones it still serves after Consul dropped them', (t) => {
  const served = { upstreams: ['10.0.0.1:80', '10.0.0.3:80'], upstreamsSince: { '10.0.0.1:80': 'T1', '10.0.0.3:80': 'T3' } };
  const consul = [
    { id: 'b', upstreams: ['10.0.0.2:80'], health: 'passing', checks: '2/2' },
    { id: 'a', upstreams: ['10.0.0.1:80'], health: 'passing', checks: '2/2' },
  ];
  t.deepEqual(instanceRows('hello', served, consul, new Map([['10.0.0.3:80', 'c']])), [
    { service: 'hello', id: 'a', address: '10.0.0.1:80', health: 'passing', checks: '2/2', state: 'serving', since: 'T1', outbox: null },
    { service: 'hello', id: 'b', address: '10.0.0.2:80', health: 'passing', checks: '2/2', state: 'joining', since: null, outbox: null },
    { service: 'hello', id: 'c', address: '10.0.0.3:80', health: 'not listed', checks: '', state: 'leaving', since: 'T3', outbox: null },
  ]);
  t.is(instanceRows('hello', served, [], new Map())[0].id, '(unknown)');
});

test('health is the worst of Consul check statuses, with how many pass', (t) => {
  t.deepEqual(healthOfChecks(['passing', 'passing']), { health: 'passing', checks: '2/2' });
  t.deepEqual(healthOfChecks(['passing', 'warning']), { health: 'warning', checks: '1/2' });
  t.deepEqual(healthOfChecks(['warning', 'critical']), { health: 'critical', checks: '0/2' });
  t.deepEqual(healthOfChecks(['passing', 'odd']), { health: 'odd', checks: '1/2' });
  t.deepEqual(healthOfChecks([]), { health: 'no checks', checks: '0/0' });
});

test('tally: counts and shares per instance over everything sent, failures by reason', (t) => {
  const result = tally([{ instance: 'r2' }, { instance: 'r1' }, { instance: 'r2' }, { failure: 'HTTP 503' }]);
  t.deepEqual(result, {
    total: 4,
    instances: [
      { id: 'r2', count: 2, share: 0.5 },
      { id: 'r1', count: 1, share: 0.25 },
    ],
    failures: 1,
    failureReasons: [{ reason: 'HTTP 503', count: 1 }],
  });
  t.deepEqual(tally([]), { total: 0, instances: [], failures: 0, failureReasons: [] });
});

test("consul instances follow the balancer's own rule: passing only, resolved names, dropped entries left out", (t) => {
  const entries = [
    entry('ip', '10.0.0.1', 80),
    entry('failing', '10.0.0.2', 80, ['passing', 'critical']),
    entry('named', 'replica.internal', 81),
    entry('dup', '10.0.0.1', 80),
    entry('zero', '10.0.0.9', 0),
  ];
  const resolved = new Map<string, Resolution>([['replica.internal', { addresses: ['10.0.0.7', '10.0.0.8'] }]]);
  const selection = selectUpstreams(entries, resolved);
  t.deepEqual(consulInstances(selection, entries, resolved), [
    { id: 'ip', upstreams: ['10.0.0.1:80'], health: 'passing', checks: '2/2' },
    { id: 'named', upstreams: ['10.0.0.7:81', '10.0.0.8:81'], health: 'passing', checks: '2/2' },
  ]);
});

const helloTable = (upstreams: string[]): GatewayTable => ({
  services: [{ name: 'hello', routes: [{ path: '/', exact: true }], upstreams }],
});

test('recordServed keeps the since of an upstream that stays and stamps a new one, per service', (t) => {
  const status = createStatusStore('http://127.0.0.1:8500');
  status.recordServed(helloTable(['a:1', 'b:1']), true, 'T1');
  status.recordServed(helloTable(['b:1', 'c:1']), true, 'T2');
  t.like(status.read().services.hello, { routes: ['=/'], upstreams: ['b:1', 'c:1'], upstreamsSince: { 'b:1': 'T1', 'c:1': 'T2' } });
  t.like(status.read(), { reloads: 2, changedAt: 'T2', lastReloadAt: 'T2' });
});

test('the applier records since and tells the page once nginx serves a set', async (t) => {
  const status = createStatusStore('http://127.0.0.1:8500');
  const applied: string[][] = [];
  const quiet: Logger = { info() {}, warn() {}, error() {} };
  const applier = createApplier({
    target: { writeCandidate: async () => {}, check: async () => null, installCandidate: async () => {}, reload: async () => {} },
    renderText: (table) => JSON.stringify(table),
    status,
    logger: quiet,
    debounceMs: 5,
    onApplied: (table) => applied.push(table.services.flatMap((s) => s.upstreams)),
  });
  t.teardown(() => applier.stop());
  applier.request(helloTable(['a:1']));
  await new Promise((r) => setTimeout(r, 20));
  await applier.idle();
  t.deepEqual(applied, [['a:1']]);
  t.truthy(status.read().services.hello.upstreamsSince['a:1']);
});

const settings: NginxSettings = { ...RENDER_SETTINGS, listenAddress: '0.0.0.0', accessLog: { stdout: true } };

test('the admin listener proxies the page and its stream to the watcher, and /_balancer/try only as a GET through the public listener', (t) => {
  for (const upstreams of [[], ['127.0.0.1:3000']]) {
    const config = renderNginxConfig(settings, helloTable(upstreams));
    // The page is served in the admin server block only (the second `server {`).
    const [publicServer, text] = config.split('  server {').slice(1);
    t.false(publicServer.includes('/_balancer/evidence'), 'not on the public listener');
    t.regex(text, /listen 127\.0\.0\.1:8081;/);
    t.regex(text, /location \^~ \/_balancer\/evidence \{[^}]*proxy_pass http:\/\/127\.0\.0\.1:4001;/);
    t.regex(text, /location = \/_balancer\/events \{[^}]*proxy_pass http:\/\/127\.0\.0\.1:4001;[^}]*proxy_buffering off;/);
    // The activity events: relayed by the watcher, unbuffered, read timeout beyond the service's 15 s heartbeat.
    t.regex(
      text,
      /location = \/_balancer\/activity \{[^}]*proxy_pass http:\/\/127\.0\.0\.1:4001;[^}]*proxy_buffering off;\s+proxy_read_timeout 60s;/,
    );
    t.false(publicServer.includes('/_balancer/activity'), 'the relay is not on the public listener');
    // A wildcard listen address is reached on loopback; the path becomes /.
    t.regex(
      text,
      /location = \/_balancer\/try \{\s+#[^\n]*\n\s+limit_except GET \{ deny all; \}\s+proxy_pass http:\/\/127\.0\.0\.1:8080\/;/,
    );
  }
  t.regex(renderNginxConfig({ ...settings, listenAddress: '::' }, helloTable([])), /proxy_pass http:\/\/\[::1\]:8080\/;/);
});

/** The page's routes mounted on a real loopback server, with a status the test changes. */
async function servePage(
  t: import('ava').ExecutionContext,
  options: { maxStreams?: number; activityStreamUrl?: string; readHealth?: (upstream: string) => Promise<unknown> } = {},
) {
  const status = createStatusStore('http://127.0.0.1:8500');
  status.recordConsulReachability(true, null);
  status.recordConsulAnswer({ index: 1, dropped: new Map(), droppedRoutes: [] });
  const evidence: EvidencePage = createEvidencePage({
    assets: { html: '<!doctype html><p>page</p>', css: 'p{}', icon: '<svg/>', script: 'void 0;' },
    readStatus: () => status.read(),
    pollMs: 60_000,
    // Port 9 (discard): nothing listens there on loopback.
    activityStreamUrl: `http://127.0.0.1:9${ACTIVITY_STREAM_PATH}`,
    // No instance's /health is asked unless a test answers for them.
    readHealth: () => Promise.resolve({ status: 'ok' }),
    ...options,
  });
  const server = http.createServer((req, res) => {
    if (!evidence.routes(req, res)) res.writeHead(418).end('not the page');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => {
    evidence.close();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { status, evidence, base };
}

test('every file answers with its type and charset, no-store, nosniff and a self-only CSP; other methods get 405', async (t) => {
  const { base } = await servePage(t);
  const types: Record<string, string> = {
    [EVIDENCE_PATHS.page]: 'text/html; charset=utf-8',
    [EVIDENCE_PATHS.script]: 'text/javascript; charset=utf-8',
    [EVIDENCE_PATHS.style]: 'text/css; charset=utf-8',
    [EVIDENCE_PATHS.icon]: 'image/svg+xml; charset=utf-8',
    '/_balancer/evidence/nothing': 'application/json; charset=utf-8',
  };
  for (const [path, type] of Object.entries(types)) {
    const res = await fetch(base + path);
    await res.arrayBuffer();
    t.is(res.status, path.endsWith('nothing') ? 404 : 200, path);
    t.is(res.headers.get('content-type'), type, path);
    t.is(res.headers.get('cache-control'), 'no-store', path);
    t.is(res.headers.get('x-content-type-options'), 'nosniff', path);
    t.regex(res.headers.get('content-security-policy') ?? '', /^default-src 'self';/, path);
  }
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const res = await fetch(base + EVIDENCE_PATHS.events, { method });
    t.is(res.status, 405);
    t.is(res.headers.get('allow'), 'GET, HEAD');
  }
  t.is((await fetch(`${base}/_balancer/status`)).status, 418, 'paths that are not the page are left to the status server');
});

/** Reads an event stream's snapshots as they come, until the stream ends. */
async function openStream(url: string) {
  const res = await fetch(url);
  const snapshots: EvidenceSnapshot[] = [];
  let buffer = '';
  const ended = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = /^event: snapshot\ndata: (.*)$/s.exec(message);
        if (data) snapshots.push(JSON.parse(data[1]) as EvidenceSnapshot);
      }
    }
  })();
  return { res, snapshots, ended };
}

const until = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

test('the stream sends a snapshot at once, another when Consul answers with news, and ends after a reload', async (t) => {
  const { status, evidence, base } = await servePage(t);
  const stream = await openStream(base + EVIDENCE_PATHS.events);
  t.is(stream.res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  await until('the first snapshot', () => stream.snapshots.length === 1);
  t.deepEqual(stream.snapshots[0].instances, []);

  const entries = [entry('r1', '127.0.0.1', 3001)];
  const view: GatewayView = {
    index: 2,
    services: new Map([['hello', { entries, selection: selectUpstreams(entries), resolved: new Map() }]]),
    droppedRoutes: [{ service: 'other', route: '/x;y', reason: 'route "/x;y" contains ";"' }],
  };
  evidence.consulAnswered(view);
  await until('a second snapshot', () => stream.snapshots.length === 2);
  t.like(stream.snapshots[1].instances[0], { service: 'hello', id: 'r1', state: 'joining', since: null });

  // The same news again sends nothing.
  evidence.consulAnswered(view);
  status.recordConsulAnswer({ index: 2, dropped: new Map([['hello', []]]), droppedRoutes: view.droppedRoutes });
  status.recordServed(helloTable(['127.0.0.1:3001']), true, 'T1');
  evidence.applied();
  await stream.ended;
  t.is(stream.snapshots.length, 3);
  t.like(stream.snapshots[2].instances[0], { service: 'hello', id: 'r1', state: 'serving', since: 'T1' });
  t.deepEqual(stream.snapshots[2].services, [{ name: 'hello', routes: ['=/'] }]);
  t.deepEqual(stream.snapshots[2].droppedRoutes, view.droppedRoutes);
});

test("a hello replica's outbox shows on its row while the page is open, filling before full; an instance without one shows none", async (t) => {
  const answers: Record<string, unknown> = {
    '127.0.0.1:3001': { status: 'ok', outbox: { entries: 8100, maxEntries: 10000, state: 'filling', unpublishedOwn: 40 } },
    '127.0.0.1:3002': { status: 'ok', instance: 'activity-1' },
  };
  const asked: string[] = [];
  const { evidence, base } = await servePage(t, {
    readHealth: (upstream) => {
      asked.push(upstream);
      return upstream in answers ? Promise.resolve(answers[upstream]) : Promise.reject(new Error('refused'));
    },
  });
  const entries = [entry('r1', '127.0.0.1', 3001), entry('a1', '127.0.0.1', 3002), entry('r2', '127.0.0.1', 3003)];
  evidence.consulAnswered({
    index: 2,
    services: new Map([['hello', { entries, selection: selectUpstreams(entries), resolved: new Map() }]]),
    droppedRoutes: [],
  });
  t.deepEqual(asked, [], 'nothing is asked while no page is open');
  const stream = await openStream(base + EVIDENCE_PATHS.events);
  await until('a snapshot with the outbox', () => stream.snapshots.some((s) => s.instances.some((i) => i.outbox !== null)));
  const last = stream.snapshots[stream.snapshots.length - 1];
  const byId = Object.fromEntries(last.instances.map((i) => [i.id, i.outbox]));
  t.deepEqual(byId, { r1: { state: 'filling', entries: 8100, maxEntries: 10000 }, a1: null, r2: null });
  t.deepEqual(asked.sort(), ['127.0.0.1:3001', '127.0.0.1:3002', '127.0.0.1:3003']);
});

test('streams beyond the limit get a 503, and close() ends the open ones', async (t) => {
  const { evidence, base } = await servePage(t, { maxStreams: 1 });
  const first = await openStream(base + EVIDENCE_PATHS.events);
  const second = await fetch(base + EVIDENCE_PATHS.events);
  t.is(second.status, 503);
  t.is(second.headers.get('retry-after'), '5');
  evidence.close();
  await first.ended;
  t.is(first.snapshots.length, 1);
  t.is((await fetch(base + EVIDENCE_PATHS.events)).status, 503, 'no new stream once closed (the balancer is stopping)');
});

const event = (id: string, userId = 'u1', type = 'created'): ActivityEvent => ({ id, type, userId, at: '2026-01-01T10:00:00.000Z' });

test('activity events: only the four fields as strings, newest first, no id twice, at most 50 rows', (t) => {
  t.deepEqual(activityEventOf(JSON.stringify({ ...event('e1'), extra: '<b>' })), event('e1'));
  for (const bad of [
    'not json',
    'null',
    '"text"',
    JSON.stringify({ ...event('e1'), userId: 7 }),
    JSON.stringify({ ...event('e1'), id: '' }),
  ])
    t.is(activityEventOf(bad), null, bad);
  let rows: ActivityEvent[] = [];
  for (let i = 1; i <= 60; i++) rows = addActivity(rows, event(`e${i}`));
  t.is(rows.length, 50);
  t.is(rows[0].id, 'e60');
  t.is(rows[49].id, 'e11');
  t.deepEqual(addActivity(rows, event('e55', 'again')), rows, 'a replayed event is not shown twice');
  t.regex(unavailableText({ status: 404, error: 'not found' }), /No service is routed at \/api\/activity/);
  t.regex(unavailableText({ status: 503, error: 'service unavailable' }), /no instance passes/);
  t.regex(unavailableText({ status: 0, error: 'connect ECONNREFUSED 127.0.0.1:9' }), /did not answer: connect ECONNREFUSED/);
  t.regex(unavailableText({ status: 429, error: 'too many requests' }), /HTTP 429 too many requests/);
});

/** A stand-in for the public listener: answers the activity stream path as `handle` says, records requests. */
async function fakePublicListener(
  t: import('ava').ExecutionContext,
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
) {
  const requests: http.IncomingMessage[] = [];
  const closed: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    req.socket.on('close', () => closed.push(req.url ?? ''));
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${ACTIVITY_STREAM_PATH}`, requests, closed };
}

/** The whole answer of one activity stream that ends by itself. */
async function readAll(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  return { res, text: await res.text() };
}

test('no activity stream to relay: a 200 event stream saying why (404, 503, nothing listening), asked again after 5 s', async (t) => {
  for (const [status, error] of [
    [404, 'not found'],
    [503, 'service unavailable'],
  ] as const) {
    const upstream = await fakePublicListener(t, (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error, detail: 'x' }));
    });
    const { base } = await servePage(t, { activityStreamUrl: upstream.url });
    const { res, text } = await readAll(base + EVIDENCE_PATHS.activity);
    t.is(res.status, 200);
    t.is(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    t.is(res.headers.get('cache-control'), 'no-store');
    t.regex(res.headers.get('content-security-policy') ?? '', /^default-src 'self';/);
    t.is(text, `retry: 5000\n\nevent: unavailable\ndata: ${JSON.stringify({ status, error })}\n\n`);
  }
  const { base } = await servePage(t);
  const { text } = await readAll(base + EVIDENCE_PATHS.activity);
  t.regex(text, /^retry: 5000\n\nevent: unavailable\ndata: \{"status":0,"error":"connect ECONNREFUSED 127\.0\.0\.1:9"\}\n\n$/);
  const post = await fetch(base + EVIDENCE_PATHS.activity, { method: 'POST' });
  t.is(post.status, 405, 'the relay only reads');
});

test('the activity stream is relayed as it comes, resumes from a valid Last-Event-ID, and ends with a reload or a stop', async (t) => {
  let push: ((text: string) => void) | undefined;
  const upstream = await fakePublicListener(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.write('retry: 1000\n\n: connected\n\n');
    push = (text) => res.write(text);
  });
  const { evidence, base } = await servePage(t, { activityStreamUrl: upstream.url, maxStreams: 1 });
  const res = await fetch(base + EVIDENCE_PATHS.activity, { headers: { 'last-event-id': 'e-41' } });
  t.is(res.status, 200);
  t.is(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  t.is(res.headers.get('x-accel-buffering'), 'no');
  t.is(upstream.requests[0].headers['last-event-id'], 'e-41');
  let text = '';
  let ended = false;
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    ended = true;
  })();
  await until('the stream to start', () => text.includes(': connected'));
  push!(`id: e-42\ndata: ${JSON.stringify(event('e-42'))}\n\n`);
  await until('the event', () => text.includes('e-42\ndata'));
  t.is(text, `${LIVE_MESSAGE}retry: 1000\n\n: connected\n\nid: e-42\ndata: ${JSON.stringify(event('e-42'))}\n\n`);
  t.is((await fetch(base + EVIDENCE_PATHS.activity)).status, 503, 'one relay at most here');

  evidence.applied();
  await until('the relayed stream to end at a reload', () => ended);
  await until('the upstream request to close', () => upstream.closed.length === 1);

  // A Last-Event-ID that is not an event id is not passed on.
  const again = await fetch(base + EVIDENCE_PATHS.activity, { headers: { 'last-event-id': 'x\u00e9 y' } });
  await until('the second upstream request', () => upstream.requests.length === 2);
  t.is(upstream.requests[1].headers['last-event-id'], undefined);
  evidence.close();
  await again.text();
  await until('the second upstream request to close', () => upstream.closed.length === 2);
  t.is((await fetch(base + EVIDENCE_PATHS.activity)).status, 503, 'no new relay once closed');
});
