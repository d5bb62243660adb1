// The evidence page's script, bundled for browsers by scripts/build.mjs. It follows the watcher's event
// stream and sends requests through the balancer; it only reads. Every value from the stream or a
// response reaches the DOM as textContent (or an attribute value), never as markup.
import {
  ACTIVITY_ROWS,
  activityEventOf,
  addActivity,
  tally,
  unavailableText,
  type ActivityEvent,
  type ActivityUnavailable,
  type EvidenceSnapshot,
  type InstanceRow,
  type RequestOutcome,
} from '../evidence-model';

const EVENTS_URL = '/_balancer/events';
/** The activity service's event stream, relayed by the watcher from the public listener (same origin). */
const ACTIVITY_URL = '/_balancer/activity';
/** A GET of / through the balancer's public listener (render.ts evidenceLocations), same origin as the page. */
const TRY_URL = '/_balancer/try';
const MAX_REQUESTS = 1000;
/** Requests in flight at once: a browser opens about 6 connections per origin anyway. */
const PARALLEL = 6;
const REQUEST_TIMEOUT_MS = 10_000;

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no element #${id}`);
  return element as T;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A table row's cells: class, label (shown before the value on a phone) and text, as text. */
function appendCells(tr: HTMLTableRowElement, cells: ReadonlyArray<[string, string, string]>): void {
  for (const [name, label, text] of cells) {
    const td = element('td', name, text);
    td.dataset.label = label;
    tr.append(td);
  }
}

function ago(iso: string | null, now: number): string {
  if (!iso) return '–';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const age = seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
  return `${new Date(iso).toLocaleTimeString()} (${age} ago)`;
}

const STATE_TEXT: Record<InstanceRow['state'], string> = {
  serving: 'serving',
  joining: 'joining: nginx loads it next',
  leaving: 'leaving: no longer in Consul',
};

let latest: EvidenceSnapshot | undefined;
let snapshots = 0;

function renderSnapshot(s: EvidenceSnapshot): void {
  const now = Date.now();
  const names = s.services.map((service) => service.name).join(', ');
  byId('service').textContent = names;
  document.title = `Balancer evidence: ${names || 'no routed service'}`;
  byId('routes').replaceChildren(
    ...s.services.map((service) => {
      const li = element('li');
      li.dataset.service = service.name;
      li.append(element('code', undefined, service.name), document.createTextNode(`: ${service.routes.join(', ') || 'no route served'}`));
      return li;
    }),
  );
  byId('consul-index').textContent = s.consulIndex === null ? '–' : String(s.consulIndex);
  byId('reloads').textContent = String(s.reloads);
  byId('changed-at').textContent = ago(s.changedAt, now);
  byId('consul-down').hidden = s.consulReachable;

  const rows = s.instances.map((row) => {
    const tr = element('tr');
    tr.dataset.id = row.id;
    tr.dataset.state = row.state;
    tr.dataset.service = row.service;
    const cells: Array<[string, string, string]> = [
      ['service', 'Service', row.service],
      ['id', 'Instance', row.id],
      ['address', 'Address', row.address],
      ['health', 'Health', row.checks ? `${row.health} (${row.checks} checks)` : row.health],
      ['state', 'State', STATE_TEXT[row.state]],
      ['since', 'In the set since', row.since ? ago(row.since, now) : '–'],
      ['outbox', 'Outbox', row.outbox ? `${row.outbox.state}: ${row.outbox.entries} of ${row.outbox.maxEntries}` : '–'],
    ];
    if (row.outbox) tr.dataset.outbox = row.outbox.state;
    appendCells(tr, cells);
    return tr;
  });
  byId('instances')
    .querySelector('tbody')!
    .replaceChildren(...rows);
  byId('no-instances').hidden = rows.length > 0;

  byId('dropped-section').hidden = s.dropped.length === 0 && s.droppedRoutes.length === 0;
  byId('dropped').replaceChildren(
    ...s.dropped.map((d) => {
      const li = element('li');
      li.append(element('code', undefined, `${d.service} ${d.id}`), document.createTextNode(`: ${d.reason}`));
      return li;
    }),
    ...s.droppedRoutes.map((d) => {
      const li = element('li');
      li.dataset.kind = 'route';
      li.append(element('code', undefined, `${d.service} ${d.route}`), document.createTextNode(`: ${d.reason}`));
      return li;
    }),
  );
}

function followEvents(): void {
  const badge = byId('connection');
  const events = new EventSource(EVENTS_URL);
  events.addEventListener('open', () => {
    badge.dataset.state = 'live';
    badge.textContent = 'live';
  });
  // The watcher ends streams after each nginx reload; EventSource reconnects by itself.
  events.addEventListener('error', () => {
    badge.dataset.state = 'reconnecting';
    badge.textContent = 'reconnecting…';
  });
  events.addEventListener('snapshot', (event) => {
    latest = JSON.parse((event as MessageEvent<string>).data) as EvidenceSnapshot;
    snapshots++;
    document.body.dataset.snapshots = String(snapshots);
    renderSnapshot(latest);
  });
  // The "since" ages move on between snapshots.
  setInterval(() => latest && renderSnapshot(latest), 5000);
}

function renderActivity(events: readonly ActivityEvent[]): void {
  const rows = events.map((event) => {
    const tr = element('tr');
    tr.dataset.id = event.id;
    tr.dataset.type = event.type;
    const time = Number.isNaN(Date.parse(event.at)) ? event.at : new Date(event.at).toLocaleTimeString();
    const cells: Array<[string, string, string]> = [
      ['type', 'Change', event.type],
      ['user', 'User', event.userId],
      ['at', 'Time', time],
      ['event', 'Event', event.id.slice(0, 8)],
    ];
    appendCells(tr, cells);
    tr.lastElementChild!.setAttribute('title', event.id);
    return tr;
  });
  byId('activity')
    .querySelector('tbody')!
    .replaceChildren(...rows);
  byId('no-activity').hidden = rows.length > 0;
}

function followActivity(): void {
  const badge = byId('activity-state');
  byId('activity-max').textContent = String(ACTIVITY_ROWS);
  const setState = (state: string, text: string) => {
    badge.dataset.state = state;
    badge.textContent = text;
  };
  let events: ActivityEvent[] = [];
  let unavailable = false;
  const stream = new EventSource(ACTIVITY_URL);
  // The relay always answers 200: `live` and the stream, or one `unavailable` message and the end (then
  // EventSource asks again after its retry), so an absent activity service is a state, not an error.
  stream.addEventListener('live', () => {
    unavailable = false;
    setState('live', 'live');
  });
  stream.addEventListener('unavailable', (event) => {
    unavailable = true;
    const reason = JSON.parse((event as MessageEvent<string>).data) as ActivityUnavailable;
    setState('unavailable', unavailableText(reason));
  });
  stream.addEventListener('message', (event) => {
    const parsed = activityEventOf((event as MessageEvent<string>).data);
    if (!parsed) return;
    events = addActivity(events, parsed);
    renderActivity(events);
  });
  // The watcher ends relayed streams at each reload; EventSource reconnects by itself with Last-Event-ID.
  stream.addEventListener('error', () => {
    if (!unavailable) setState('reconnecting', 'reconnecting…');
  });
}

async function requestOnce(): Promise<RequestOutcome> {
  try {
    const res = await fetch(TRY_URL, { cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await res.arrayBuffer();
    const instance = res.headers.get('x-instance-id');
    if (!res.ok) return { failure: `HTTP ${res.status}` };
    return instance ? { instance } : { failure: 'no X-Instance-Id header' };
  } catch (error) {
    return { failure: error instanceof DOMException && error.name === 'TimeoutError' ? 'timed out' : 'network error' };
  }
}

function renderChart(outcomes: readonly RequestOutcome[], planned: number): void {
  const t = tally(outcomes);
  const chart = byId('chart');
  const parts: HTMLElement[] = [];
  const bar = (label: string, count: number, kind: 'instance' | 'failed') => {
    const share = t.total === 0 ? 0 : count / t.total;
    const name = element('div', 'label', label);
    const track = element('div', 'track');
    const fill = element('div', kind === 'failed' ? 'bar failed' : 'bar');
    // A CSSOM property, not a style attribute: allowed by the CSP.
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    track.append(fill);
    const value = element('div', 'value', `${count} (${(share * 100).toFixed(1)} %)`);
    for (const part of [name, track, value]) part.dataset.kind = kind;
    name.dataset.instance = kind === 'instance' ? label : '';
    value.dataset.count = String(count);
    parts.push(name, track, value);
  };
  for (const i of t.instances) bar(i.id, i.count, 'instance');
  if (t.failures > 0) {
    bar('failed', t.failures, 'failed');
    parts.push(element('p', 'reasons', t.failureReasons.map((r) => `${r.reason}: ${r.count}`).join(' · ')));
  }
  chart.replaceChildren(...parts);
  const done = t.total === planned;
  byId('progress').textContent =
    `${done ? 'Sent' : 'Sending'} ${t.total}/${planned}: ${t.instances.length} instance(s) answered, ${t.failures} failed.`;
  chart.dataset.total = String(t.total);
  chart.dataset.done = String(done);
}

async function sendRequests(count: number): Promise<void> {
  const outcomes: RequestOutcome[] = [];
  let next = 0;
  renderChart(outcomes, count);
  const worker = async () => {
    while (next < count) {
      next++;
      outcomes.push(await requestOnce());
      renderChart(outcomes, count);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, count) }, worker));
}

function setUpSending(): void {
  const form = byId<HTMLFormElement>('send-form');
  const input = byId<HTMLInputElement>('count');
  const button = byId<HTMLButtonElement>('send');
  input.max = String(MAX_REQUESTS);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const count = Number(input.value);
    if (!Number.isInteger(count) || count < 1 || count > MAX_REQUESTS) {
      byId('progress').textContent = `Requests: a whole number from 1 to ${MAX_REQUESTS}.`;
      return;
    }
    button.disabled = true;
    void sendRequests(count).finally(() => (button.disabled = false));
  });
}

followEvents();
followActivity();
setUpSending();
