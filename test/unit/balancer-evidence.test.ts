// The evidence page's parts without a browser: the rows and tallies it shows, its routes and headers on a
// real loopback server, its event stream, and the nginx locations and status bookkeeping it relies on.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { createApplier } from '../../balancer/apply';
import { healthOfChecks, instanceRows, tally, type EvidenceSnapshot } from '../../balancer/evidence-model';
import { consulInstances, createEvidencePage, EVIDENCE_PATHS, type EvidencePage } from '../../balancer/evidence-page';
import { renderNginxConfig, selectUpstreams, type HealthEntry, type NginxSettings, type Resolution } from '../../balancer/render';
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
    { service: 'hello', id: 'a', address: '10.0.0.1:80', health: 'passing', checks: '2/2', state: 'serving', since: 'T1' },
    { service: 'hello', id: 'b', address: '10.0.0.2:80', health: 'passing', checks: '2/2', state: 'joining', since: null },
    { service: 'hello', id: 'c', address: '10.0.0.3:80', health: 'not listed', checks: '', state: 'leaving', since: 'T3' },
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
    target: { check: async () => null, installCandidate: async () => {}, reload: async () => {} },
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

const settings: NginxSettings = {
  listenAddress: '0.0.0.0',
  listenPort: 8080,
  workDir: '/tmp/work',
  statusPort: 4001,
  adminAddress: '127.0.0.1',
  adminPort: 8081,
  connLimitPerClient: 100,
  rateLimitPerClient: 1000,
  rateBurstPerClient: 2000,
  accessLog: { stdout: true },
  workerProcesses: 1,
};

test('the admin listener proxies the page and its stream to the watcher, and /_balancer/try only as a GET through the public listener', (t) => {
  for (const upstreams of [[], ['127.0.0.1:3000']]) {
    const config = renderNginxConfig(settings, helloTable(upstreams));
    // The page is served in the admin server block only (the second `server {`).
    const [publicServer, text] = config.split('  server {').slice(1);
    t.false(publicServer.includes('/_balancer/evidence'), 'not on the public listener');
    t.regex(text, /listen 127\.0\.0\.1:8081;/);
    t.regex(text, /location \^~ \/_balancer\/evidence \{[^}]*proxy_pass http:\/\/127\.0\.0\.1:4001;/);
    t.regex(text, /location = \/_balancer\/events \{[^}]*proxy_pass http:\/\/127\.0\.0\.1:4001;[^}]*proxy_buffering off;/);
    // A wildcard listen address is reached on loopback; the path becomes /.
    t.regex(
      text,
      /location = \/_balancer\/try \{\s+#[^\n]*\n\s+limit_except GET \{ deny all; \}\s+proxy_pass http:\/\/127\.0\.0\.1:8080\/;/,
    );
  }
  t.regex(renderNginxConfig({ ...settings, listenAddress: '::' }, helloTable([])), /proxy_pass http:\/\/\[::1\]:8080\/;/);
});

/** The page's routes mounted on a real loopback server, with a status the test changes. */
async function servePage(t: import('ava').ExecutionContext, options: { maxStreams?: number } = {}) {
  const status = createStatusStore('http://127.0.0.1:8500');
  status.recordConsulReachability(true, null);
  status.recordConsulAnswer({ index: 1, dropped: new Map(), droppedRoutes: [] });
  const evidence: EvidencePage = createEvidencePage({
    assets: { html: '<!doctype html><p>page</p>', css: 'p{}', icon: '<svg/>', script: 'void 0;' },
    readStatus: () => status.read(),
    pollMs: 60_000,
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
