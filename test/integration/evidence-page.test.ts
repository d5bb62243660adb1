// The evidence page in a real browser (Debian's chromium, driven by puppeteer-core) against real Consul,
// real replicas and the real balancer, all on loopback. Serial: each step builds on the last one's state,
// in one page that is never reloaded. The activity panel runs against a real nats-server (registered in
// Consul as the program does), the hello replicas' outbox relays and a real activity replica.
// EVIDENCE_SCREENSHOT_DIR (`npm run screenshot` sets docs/) keeps
// the screenshots; by default they go to a temp dir named in the log.
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startActivity, waitForConsuming, type ActivityReplica } from '../../harness/activity';
import { startBalancer, upstreamsOf, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { registerNatsInConsul, startNats, waitForNatsPassing, type NatsServer } from '../../harness/nats';
import { stopAll, waitFor } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';
import { connectBroker, ensureUserEventsStream } from '../../lib/broker';
import { userEventSubject, type UserEvent } from '../../lib/user-events';

const SERVICE = 'hello';
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
/** A Consul service ID that is markup: the page must show it as these characters. */
const HTML_ID = '<b>x</b><img src=x>';
/** A user name that is markup: the events carry only the user's id, which the page shows. */
const HTML_NAME = '<img src=x onerror=alert(1)>';
const STEP_MS = 20_000;

let consul: ConsulAgent;
let nats: NatsServer;
let activity: ActivityReplica | undefined;
let balancer: RunningBalancer;
let browser: Browser | undefined;
let page: Page;
let screenshotDir: string;
const replicas = new Map<string, Replica>();
/** Every console error and uncaught exception of the page, in order. */
const browserErrors: string[] = [];

interface Row {
  service: string;
  id: string;
  address: string;
  state: string;
}
interface ActivityRow {
  type: string;
  user: string;
  event: string;
}
interface Bar {
  id: string;
  count: number;
}

async function addReplica(id: string, service = SERVICE, env: NodeJS.ProcessEnv = {}): Promise<Replica> {
  const replica = await startReplica(consul, service, id, env);
  replicas.set(id, replica);
  return replica;
}

/**
 * Runs `expression` in the page and returns its value. Page-side code is written as strings: the test
 * program has Node's types, not the DOM's (and tsx would wrap named functions in a helper the page lacks).
 */
const inPage = async <T>(expression: string): Promise<T> => (await page.evaluate(expression)) as T;

/** The instance table as the page shows it: the text of each row's cells. */
const rows = () =>
  inPage<Row[]>(`[...document.querySelectorAll('#instances tbody tr')].map((tr) => ({
    service: tr.dataset.service,
    id: tr.querySelector('td.id').textContent,
    address: tr.querySelector('td.address').textContent,
    state: tr.dataset.state,
  }))`);

/** Waits until the table lists exactly these ids of hello, each serving (the activity replica has its own row). */
async function waitForServing(ids: string[]): Promise<Row[]> {
  const want = [...ids].sort();
  return waitFor(
    `the page to list ${want.join(', ')} as serving`,
    async () => {
      const shown = (await rows()).filter((r) => r.service === SERVICE);
      const serving = shown
        .filter((r) => r.state === 'serving')
        .map((r) => r.id)
        .sort();
      return shown.length === want.length && JSON.stringify(serving) === JSON.stringify(want) ? shown : undefined;
    },
    STEP_MS,
    100,
  );
}

/** Types N into the form, clicks Send, waits for all N, and reads the chart's bars. */
async function sendThroughPage(n: number): Promise<{ bars: Bar[]; failed: number; progress: string }> {
  await inPage(`document.getElementById('count').value = '${n}'`);
  await page.click('#send');
  await page.waitForSelector(`#chart[data-done="true"][data-total="${n}"]`, { timeout: STEP_MS });
  // The chart is a grid of label, bar, value; the value carries the count.
  const bars = await inPage<Bar[]>(`[...document.querySelectorAll('#chart .label[data-kind="instance"]')].map((label) => ({
    id: label.textContent,
    count: Number(label.nextElementSibling.nextElementSibling.dataset.count),
  }))`);
  const failed = await inPage<number>(`Number(document.querySelector('#chart .value[data-kind="failed"]')?.dataset.count ?? 0)`);
  const progress = await inPage<string>(`document.getElementById('progress').textContent`);
  return { bars, failed, progress };
}

/** The activity panel's rows as the page shows them, newest first. */
const activityRows = () =>
  inPage<ActivityRow[]>(`[...document.querySelectorAll('#activity tbody tr')].map((tr) => ({
    type: tr.querySelector('td.type').textContent,
    user: tr.querySelector('td.user').textContent,
    event: tr.querySelector('td.event').textContent,
  }))`);

/** Waits until the panel's newest rows are `want` (type and user), newest first. */
async function waitForActivity(want: Array<Omit<ActivityRow, 'event'>>): Promise<ActivityRow[]> {
  return waitFor(
    `the activity panel to show ${JSON.stringify(want)}`,
    async () => {
      const shown = await activityRows();
      const newest = shown.slice(0, want.length).map(({ type, user }) => ({ type, user }));
      return JSON.stringify(newest) === JSON.stringify(want) ? shown : undefined;
    },
    STEP_MS,
    100,
  );
}

/** A user change through the gateway's public port, as a client makes it; returns the user's id. */
async function changeUser(method: 'POST' | 'PUT', name: string, id = ''): Promise<string> {
  const res = await fetch(`${balancer.url}/api/users${id ? `/${id}` : ''}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, email: 'someone@example.com' }),
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== (method === 'POST' ? 201 : 200) || !body.id)
    throw new Error(`${method} /api/users: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

const count = (bars: Bar[], id: string) => bars.find((b) => b.id === id)?.count ?? 0;

test.before(async () => {
  await fs.access(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} is missing: scripts/provision.sh installs Debian's chromium (or set CHROMIUM_BIN)`);
  });
  screenshotDir = process.env.EVIDENCE_SCREENSHOT_DIR ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'evidence-page-')));
  await fs.mkdir(screenshotDir, { recursive: true });
  consul = await startConsul();
  nats = await startNats();
  await registerNatsInConsul(consul, nats);
  await waitForNatsPassing(consul, 1);
  await Promise.all(['r1', 'r2', 'r3'].map((id) => addReplica(id)));
  balancer = await startBalancer(consul, {}, { adminLogin: true });
  await balancer.waitForUpstreams(SERVICE, 3, STEP_MS);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    // As root Chromium refuses to start with its sandbox on.
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'],
    timeout: STEP_MS,
  });
  page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (message) => {
    if (message.type() === 'error') browserErrors.push(`console: ${message.text()} (${message.location().url ?? ''})`);
  });
  page.on('pageerror', (error) => browserErrors.push(`pageerror: ${String(error)}`));
  await page.setViewport({ width: 1280, height: 900 });
});

test.after.always(async (t) => {
  if (browserErrors.length > 0) t.log(`browser errors:\n${browserErrors.join('\n')}`);
  if (balancer) t.log(`balancer log tail:\n${balancer.logTail(10)}`);
  await browser?.close();
  await Promise.all([...replicas.values(), ...(activity ? [activity] : [])].map((r) => r.stop(3000)));
  await balancer?.cleanup();
  await nats?.close();
  await consul?.stop();
  await stopAll();
});

/** Every path the admin listener serves (and some it does not), each asked without the credential. */
const ADMIN_PATHS = [
  '/_balancer/status',
  '/_balancer/generation',
  '/_balancer/evidence/page.js',
  '/_balancer/evidence/page.css',
  '/_balancer/evidence/icon.svg',
  '/_balancer/events',
  '/_balancer/activity',
  '/_balancer/try',
  '/_balancer',
  '/_balancer/anything',
  // The routed service, which the admin listener answers with X-Upstream-Addr, and a path nothing serves.
  '/',
  '/api/users',
  '/no/such/path',
];

test.serial('without the admin token every admin path refuses: a JSON 401, the page a redirect to the login form', async (t) => {
  const ask = (path: string, init: RequestInit = {}) =>
    fetch(balancer.adminUrl + path, { redirect: 'manual', ...init, signal: AbortSignal.timeout(5000) });
  const refusals: Record<string, RequestInit> = {
    none: {},
    'a wrong Bearer token': { headers: { authorization: `Bearer ${balancer.adminToken}x` } },
    'a forged session cookie': {
      headers: { cookie: `balancer_admin=${Math.floor(Date.now() / 1000) + 3600}.AAAA.${balancer.adminToken}` },
    },
    'the token as the cookie': { headers: { cookie: `balancer_admin=${balancer.adminToken}` } },
  };
  for (const [what, init] of Object.entries(refusals)) {
    for (const path of ADMIN_PATHS) {
      for (const method of ['GET', 'POST']) {
        const res = await ask(path, { ...init, method });
        t.is(res.status, 401, `${method} ${path} with ${what}`);
        t.is(res.headers.get('x-upstream-addr'), null, `${method} ${path} with ${what}`);
        t.like(await res.json(), { error: 'unauthorized', login: '/_balancer/login' }, `${method} ${path} with ${what}`);
      }
    }
    const page = await ask('/_balancer/evidence', init);
    t.is(page.status, 302, `the page with ${what}`);
    t.is(page.headers.get('location'), '/_balancer/login');
  }
  // nginx's own subrequest location: a client cannot ask it.
  t.is((await ask('/_balancer/auth')).status, 404);

  // With the token: the same listener answers, the routed service names its upstream.
  const ok = await ask('/', { headers: balancer.adminHeaders });
  t.is(ok.status, 200);
  t.regex(ok.headers.get('x-upstream-addr') ?? '', /^127\.0\.0\.1:\d+$/);
  // A login that came over HTTPS (a TLS proxy in front says so) gets a Secure cookie.
  const login = await ask('/_balancer/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' },
    body: new URLSearchParams({ token: balancer.adminToken! }).toString(),
  });
  t.is(login.status, 303);
  t.regex(login.headers.get('set-cookie') ?? '', /; HttpOnly; SameSite=Strict; Secure$/);
});

test.serial('the browser is sent to the login form; a wrong token is refused, the right one opens the page', async (t) => {
  const refused = await page.goto(`${balancer.adminUrl}/_balancer/evidence`, { waitUntil: 'load' });
  t.is(refused?.status(), 200);
  t.is(new URL(page.url()).pathname, '/_balancer/login');
  t.is(await inPage(`document.getElementById('problem')`), null);

  await page.type('#token', 'not-the-admin-token');
  const [wrong] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#login')]);
  t.is(wrong?.status(), 401);
  t.is(await inPage(`document.getElementById('problem').textContent`), 'That is not the admin token.');
  // Chromium logs any 4xx document as a console error: this one is the refusal asked for, not the page's.
  const refusal = `console: Failed to load resource: the server responded with a status of 401 (Unauthorized) (${balancer.adminUrl}/_balancer/login)`;
  t.deepEqual(browserErrors.splice(0), [refusal]);

  await page.type('#token', balancer.adminToken!);
  const [opened] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#login')]);
  t.is(opened?.status(), 200);
  t.is(new URL(page.url()).pathname, '/_balancer/evidence');
  await waitForServing(['r1', 'r2', 'r3']);
  t.is(await inPage(`document.getElementById('connection').dataset.state`), 'live');
  const [cookie] = await page.cookies();
  t.like(cookie, { name: 'balancer_admin', path: '/_balancer', httpOnly: true, sameSite: 'Strict', secure: false });
  t.false(cookie.value.includes(balancer.adminToken!), 'the cookie holds a session, not the token');
  // The page's script cannot read the session (HttpOnly).
  t.is(await inPage(`document.cookie`), '');
});

test.serial('the page answers with safe headers and lists the three instances Consul passes', async (t) => {
  const response = await page.goto(`${balancer.adminUrl}/_balancer/evidence`, { waitUntil: 'load' });
  t.is(response?.status(), 200);
  const headers = response!.headers();
  t.is(headers['content-type'], 'text/html; charset=utf-8');
  t.is(headers['content-security-policy'], "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  t.is(headers['x-content-type-options'], 'nosniff');
  t.is(headers['cache-control'], 'no-store');

  const shown = await waitForServing(['r1', 'r2', 'r3']);
  const status = await balancer.status();
  t.deepEqual(shown.map((r) => r.address).sort(), [...upstreamsOf(status, SERVICE)].sort());
  t.is(await inPage(`document.getElementById('service').textContent`), SERVICE);
  t.is(await inPage(`document.querySelector('#routes li[data-service="hello"]').textContent`), 'hello: =/, /api/users');
  t.deepEqual(await inPage(`[...document.querySelectorAll('#instances td.service')].map((td) => td.textContent)`), [
    'hello',
    'hello',
    'hello',
  ]);
  t.is(await inPage(`document.getElementById('connection').dataset.state`), 'live');
  // No activity service yet: the panel says so (the gateway answers its path with a 404).
  await page.waitForSelector('#activity-state[data-state="unavailable"]');
  t.regex(await inPage<string>(`document.getElementById('activity-state').textContent`), /^No service is routed at \/api\/activity/);
  t.false(await inPage<boolean>(`document.getElementById('no-activity').hidden`));
  // Survives only as long as the page is not reloaded: later steps check it is still there.
  await inPage(`window.evidenceMarker = 'not reloaded'`);
});

test.serial('the data and the send path: an event stream and a GET-only proxy to the public listener, both no-store', async (t) => {
  const events = await fetch(`${balancer.adminUrl}/_balancer/events`, {
    headers: balancer.adminHeaders,
    signal: AbortSignal.timeout(5000),
  });
  t.is(events.status, 200);
  t.is(events.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  t.is(events.headers.get('cache-control'), 'no-store');
  const reader = events.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value as Uint8Array);
  await reader.cancel();
  t.regex(first, /event: snapshot\ndata: \{"services":\[\{"name":"hello","routes":\["=\/","\/api\/users"\]\}\]/);

  const relayed = await fetch(`${balancer.adminUrl}/_balancer/activity`, {
    headers: balancer.adminHeaders,
    signal: AbortSignal.timeout(5000),
  });
  t.is(relayed.status, 200);
  t.is(relayed.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  t.is(relayed.headers.get('cache-control'), 'no-store');
  t.regex(await relayed.text(), /^retry: 5000\n\nevent: unavailable\ndata: \{"status":404,"error":"not found"\}\n\n$/);

  const tried = await fetch(`${balancer.adminUrl}/_balancer/try`, { headers: balancer.adminHeaders, signal: AbortSignal.timeout(5000) });
  t.is(tried.status, 200);
  t.is(tried.headers.get('cache-control'), 'no-store');
  t.regex(tried.headers.get('x-instance-id') ?? '', /^r[123]$/);
  for (const [url, method] of [
    ['/_balancer/try', 'POST'],
    ['/_balancer/evidence', 'POST'],
    ['/_balancer/events', 'DELETE'],
    ['/_balancer/activity', 'POST'],
  ]) {
    const res = await fetch(balancer.adminUrl + url, { method, headers: balancer.adminHeaders, signal: AbortSignal.timeout(5000) });
    t.true(res.status === 403 || res.status === 405, `${method} ${url}: ${res.status}`);
  }
  // The page lives on the admin listener only: the public port has none of it.
  for (const url of ['/_balancer/evidence', '/_balancer/events', '/_balancer/try', '/_balancer/activity']) {
    const res = await fetch(balancer.url + url, { signal: AbortSignal.timeout(5000) });
    t.is(res.status, 404, `public ${url}`);
  }
});

test.serial('the activity panel shows user changes made through the gateway as they happen, newest first, ids as text', async (t) => {
  activity = await startActivity(consul, 'a1');
  await waitForConsuming(activity);
  // The relay's last answer said "unavailable" and asks again every 5 s; then the gateway routes the path.
  await page.waitForSelector('#activity-state[data-state="live"]');

  const ann = await changeUser('POST', 'Ann');
  await waitForActivity([{ type: 'created', user: ann }]);
  const markup = await changeUser('POST', HTML_NAME);
  // One change at a time: the replicas' relays race, so two changes in flight may be published in either order.
  await waitForActivity([
    { type: 'created', user: markup },
    { type: 'created', user: ann },
  ]);
  await changeUser('PUT', 'Ann Again', ann);
  await waitForActivity([
    { type: 'updated', user: ann },
    { type: 'created', user: markup },
    { type: 'created', user: ann },
  ]);

  // An event whose ids are markup, published to the real broker as a producer could: shown as text.
  const hostile: UserEvent = { id: `<i>${randomUUID()}</i>`, type: 'deleted', userId: HTML_NAME, at: new Date().toISOString() };
  const nc = await connectBroker([nats.url], 'evidence-page-test');
  try {
    await ensureUserEventsStream(nc);
    await nc.jetstream().publish(userEventSubject('deleted'), new TextEncoder().encode(JSON.stringify(hostile)), { msgID: hostile.id });
  } finally {
    await nc.close();
  }
  const shown = await waitForActivity([
    { type: 'deleted', user: HTML_NAME },
    { type: 'updated', user: ann },
    { type: 'created', user: markup },
    { type: 'created', user: ann },
  ]);
  t.is(shown.length, 4, JSON.stringify(shown));
  t.is(shown[0].event, hostile.id.slice(0, 8));
  t.is(await inPage('document.querySelectorAll("#activity img, #activity i, #activity b").length'), 0, 'no element was made from an id');
  t.true(await inPage<boolean>(`document.querySelector('#activity tbody').innerHTML.includes('&lt;img src=x onerror=alert(1)&gt;')`));
  t.true(await inPage<boolean>(`document.getElementById('no-activity').hidden`));
  t.is(await inPage('window.evidenceMarker'), 'not reloaded');
});

test.serial('"send N requests" draws a bar per instance: all three, counts adding up, no failure', async (t) => {
  const { bars, failed, progress } = await sendThroughPage(60);
  t.is(failed, 0, progress);
  t.deepEqual(bars.map((b) => b.id).sort(), ['r1', 'r2', 'r3']);
  t.is(
    bars.reduce((sum, b) => sum + b.count, 0),
    60,
  );
  for (const id of ['r1', 'r2', 'r3']) t.true(count(bars, id) > 0, `${id}: ${JSON.stringify(bars)}`);
  t.regex(progress, /Sent 60\/60: 3 instance\(s\) answered, 0 failed/);
});

test.serial('a fourth replica appears without a reload, then receives requests sent from the page', async (t) => {
  await addReplica('r4');
  const shown = await waitForServing(['r1', 'r2', 'r3', 'r4']);
  t.truthy(shown.find((r) => r.id === 'r4')?.address);
  t.is(await inPage('window.evidenceMarker'), 'not reloaded');
  const { bars, failed, progress } = await sendThroughPage(80);
  t.is(failed, 0, progress);
  t.true(count(bars, 'r4') > 0, JSON.stringify(bars));
  t.deepEqual(bars.map((b) => b.id).sort(), ['r1', 'r2', 'r3', 'r4']);
  // The reload that brought r4 ended the stream; the picture shows the page once it follows again.
  await page.waitForSelector('#connection[data-state="live"]', { timeout: STEP_MS });
  // The reload ended the relayed activity stream too; it resumes (Last-Event-ID) about a second later.
  await page.waitForSelector('#activity-state[data-state="live"]', { timeout: STEP_MS });
  const file = path.join(screenshotDir, 'evidence-page.png');
  await page.screenshot({ path: file, fullPage: true });
  t.log(`screenshot: ${file}`);
});

test.serial('a stopped replica disappears from the page and gets no more requests', async (t) => {
  t.is(await replicas.get('r2')!.stop(10_000), 0);
  await waitForServing(['r1', 'r3', 'r4']);
  t.is(await inPage('window.evidenceMarker'), 'not reloaded');
  const { bars, failed, progress } = await sendThroughPage(45);
  t.is(failed, 0, progress);
  t.deepEqual(bars.map((b) => b.id).sort(), ['r1', 'r3', 'r4']);
});

test.serial('a service ID with markup in it is shown as text', async (t) => {
  // The service refuses such a SERVICE_ID, so the entry is registered in Consul directly, pointing at a
  // real replica of another service, with a real HTTP check on it.
  // A replica of another service, with no route (ROUTES empty): the gateway does not follow it.
  const target = await addReplica('markup-target', 'evidence-spare', { ROUTES: '' });
  const register = await fetch(`${consul.httpAddr}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({
      ID: HTML_ID,
      Name: SERVICE,
      Address: '127.0.0.1',
      Port: target.port,
      Check: { HTTP: `${target.url}/health`, Interval: '1s' },
    }),
    headers: { 'X-Consul-Token': consul.managementToken },
    signal: AbortSignal.timeout(5000),
  });
  t.is(register.status, 200, await register.text());
  try {
    await waitForServing(['r1', 'r3', 'r4', HTML_ID]);
    const ids = await inPage<string[]>(`[...document.querySelectorAll('#instances td.id')].map((td) => td.textContent)`);
    t.true(ids.includes(HTML_ID), JSON.stringify(ids));
    t.is(await inPage(`document.querySelectorAll('#instances b, #instances img').length`), 0, 'no element was made from the id');
    t.true(await inPage<boolean>(`document.querySelector('#instances tbody').innerHTML.includes('&lt;b&gt;x&lt;/b&gt;&lt;img src=x&gt;')`));
  } finally {
    await fetch(`${consul.httpAddr}/v1/agent/service/deregister/${encodeURIComponent(HTML_ID)}`, {
      method: 'PUT',
      headers: { 'X-Consul-Token': consul.managementToken },
      signal: AbortSignal.timeout(5000),
    });
  }
  await waitForServing(['r1', 'r3', 'r4']);
});

test.serial('on a phone-sized screen nothing overflows sideways', async (t) => {
  // Puppeteer reloads the page for isMobile: the activity panel starts empty again, so one more change.
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await sendThroughPage(30);
  await page.waitForSelector('#activity-state[data-state="live"]');
  const phone = await changeUser('POST', 'Phone');
  await waitForActivity([{ type: 'created', user: phone }]);
  const overflow = await inPage<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  t.true(overflow <= 0, `${overflow} px wider than the screen`);
  const file = path.join(screenshotDir, 'evidence-page-phone.png');
  await page.screenshot({ path: file, fullPage: true });
  t.log(`screenshot: ${file}`);
});

test.serial('the browser saw no console error and no uncaught exception', (t) => {
  t.deepEqual(browserErrors, []);
});

// nginx stops gracefully: it would wait for an open event stream until worker_shutdown_timeout (30 s),
// unless the watcher ends the streams first.
test.serial('with the page open, the balancer still stops at once and exits 0', async (t) => {
  // From here on the page loses its server: its reconnection attempts are expected, not errors of the page.
  page.removeAllListeners('console');
  t.is(await inPage(`document.getElementById('connection').dataset.state`), 'live');
  const started = Date.now();
  t.is(await balancer.stop(40_000), 0);
  const ms = Date.now() - started;
  t.log(`stopped in ${ms} ms`);
  t.true(ms < 15_000, `${ms} ms: the open stream held nginx's graceful stop`);
});
