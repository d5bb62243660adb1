// Streams bounded per client, with real servers on loopback: Consul (ACLs on), nats-server, a hello replica
// (whose writes become events), an activity replica and the real balancer (watcher and nginx). Crowds of
// paused event-stream readers come from many loopback addresses (Linux routes all of 127.0.0.0/8 to lo),
// as the hostile clients of issue 26 did; a real client on its own address keeps being served.
import fs from 'node:fs';
import http from 'node:http';
import test from 'ava';
import { ADMIN_STREAMS_PER_CLIENT } from '../../balancer/render';
import { DEFAULT_STREAM_LIMIT_PER_CLIENT } from '../../balancer/config';
import { DEFAULT_MAX_STREAMS } from '../../activity/config';
import { startActivity, waitForConsuming, type ActivityReplica } from '../../harness/activity';
import { requestFrom } from '../../harness/attack';
import { startBalancer, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { registerNatsInConsul, startNats, waitForNatsPassing, type NatsServer } from '../../harness/nats';
import { stopAll, waitFor } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';
import { sseParser } from '../../harness/sse';
import { parseUserEvent } from '../../lib/user-events';

/**
 * What the activity replica's RSS may reach holding its DEFAULT_MAX_STREAMS (1,000) streams: measured on
 * this machine at 122-131 MB (70-88 MB at rest; about 40 KB a stream and the young generation V8 grows),
 * doubled. Its container's limit is 256 MB.
 */
const RSS_BOUND_MB = 264;

/** The real client's address: never one of the crowd's (127.0.0.2 onwards). */
const REAL_CLIENT = '127.0.0.250';

let consul: ConsulAgent;
let nats: NatsServer;
let hello: Replica;
let activity: ActivityReplica;
let balancer: RunningBalancer;

test.before(async () => {
  consul = await startConsul();
  nats = await startNats();
  await registerNatsInConsul(consul, nats);
  await waitForNatsPassing(consul, 1);
  hello = await startReplica(consul, 'hello', 'h1');
  activity = await startActivity(consul, 'act-1');
  await waitForConsuming(activity);
  balancer = await startBalancer(consul);
  await balancer.waitForUpstreams('hello', 1);
  await balancer.waitForUpstreams('activity', 1);
});

test.after.always(async (t) => {
  if (balancer) t.log(`balancer log tail:\n${balancer.logTail(5)}`);
  await balancer?.cleanup();
  await Promise.all([hello?.stop(3000), activity?.stop(3000)]);
  await stopAll();
  await nats?.close();
  await consul?.stop();
});

/** One stream request from `from`: a 200 is held open and never read (a paused reader); any other answer is read whole. */
interface HeldStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  close(): void;
}

function holdStream(url: string, from: string): Promise<HeldStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: from, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      const close = () => req.destroy();
      if (res.statusCode === 200) {
        res.pause();
        resolve({ status: 200, headers: res.headers, body: '', close });
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, close }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.on('error', reject);
  });
}

/** Stream requests opened at once: the rest wait, so no listen backlog overflows (as harness/attack.ts's floods). */
const OPEN_BATCH = 200;

/** `perAddress` stream requests from each of `addresses` loopback addresses (127.0.0.2 onwards), OPEN_BATCH at a time. */
async function crowd(url: string, addresses: number, perAddress: number): Promise<{ byAddress: HeldStream[][]; closeAll(): void }> {
  const froms = Array.from({ length: addresses * perAddress }, (_, i) => `127.0.0.${2 + (i % addresses)}`);
  const opened: Array<{ from: string; stream: HeldStream }> = [];
  for (let i = 0; i < froms.length; i += OPEN_BATCH)
    opened.push(
      ...(await Promise.all(froms.slice(i, i + OPEN_BATCH).map(async (from) => ({ from, stream: await holdStream(url, from) })))),
    );
  const byAddress = Array.from({ length: addresses }, (_, a) => opened.filter((o) => o.from === `127.0.0.${2 + a}`).map((o) => o.stream));
  return { byAddress, closeAll: () => opened.forEach((o) => o.stream.close()) };
}

const statuses = (streams: HeldStream[]) =>
  streams.reduce<Record<number, number>>((m, s) => ({ ...m, [s.status]: (m[s.status] ?? 0) + 1 }), {});

/** The activity replica's resident memory, from the kernel. */
const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${activity.child.pid}/status`, 'utf8'))![1]) / 1024;

/** The real client's stream: the user events it receives. */
function realClientStream(): Promise<{ userIds: string[]; close(): void }> {
  return new Promise((resolve, reject) => {
    const userIds: string[] = [];
    const req = http.get(`${balancer.url}/api/activity/stream`, { localAddress: REAL_CLIENT, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`the real client's stream answered ${res.statusCode}`));
      const feed = sseParser((m) => {
        const event = parseUserEvent(m.data);
        if (event) userIds.push(event.userId);
      });
      res.setEncoding('utf8');
      res.on('data', feed);
      resolve({ userIds, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

test.serial(
  'one address holds at most STREAM_LIMIT_PER_CLIENT streams (then a JSON 429); a real client on another address gets its stream and its events',
  async (t) => {
    const limit = DEFAULT_STREAM_LIMIT_PER_CLIENT;
    const held = await crowd(`${balancer.url}/api/activity/stream`, 25, limit + 8);
    t.teardown(() => held.closeAll());
    for (const [i, streams] of held.byAddress.entries()) t.deepEqual(statuses(streams), { 200: limit, 429: 8 }, `127.0.0.${2 + i}`);
    const refused = held.byAddress[0].find((s) => s.status === 429)!;
    t.is(refused.headers['retry-after'], '1');
    t.like(JSON.parse(refused.body), { error: 'too many requests' });

    // The real client, beside 400 held streams: its own stream, its writes and their events.
    const stream = await realClientStream();
    t.teardown(() => stream.close());
    const created = await requestFrom(`${balancer.url}/api/users`, REAL_CLIENT, 5000, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Ann', email: 'ann@example.com' }),
    });
    t.is(created.status, 201, created.body);
    const { id } = JSON.parse(created.body) as { id: string };
    await waitFor('the real client to get its event', () => stream.userIds.includes(id), 10_000);
    t.is((await requestFrom(`${balancer.url}/api/activity`, REAL_CLIENT)).status, 200);
  },
);

test.serial(`/_balancer/events: one address holds at most ${ADMIN_STREAMS_PER_CLIENT}; another address still gets one`, async (t) => {
  const held = await crowd(`${balancer.adminUrl}/_balancer/events`, 1, ADMIN_STREAMS_PER_CLIENT + 4);
  t.teardown(() => held.closeAll());
  t.deepEqual(statuses(held.byAddress[0]), { 200: ADMIN_STREAMS_PER_CLIENT, 429: 4 });
  const other = await holdStream(`${balancer.adminUrl}/_balancer/events`, REAL_CLIENT);
  other.close();
  t.is(other.status, 200);
});

test.serial(
  'the activity service holds at most ACTIVITY_MAX_STREAMS streams (then 503 with Retry-After), within a stated memory bound, and gives the memory back when they close',
  async (t) => {
    // The earlier tests' streams are gone and their memory reclaimed (a second of quiet, then two collections).
    await new Promise((r) => setTimeout(r, 3000));
    const atRest = rssMb();
    const perAddress = DEFAULT_STREAM_LIMIT_PER_CLIENT;
    // More than the cap gets past nginx: 70 addresses x 16 = 1,120.
    const addresses = Math.ceil((DEFAULT_MAX_STREAMS + 100) / perAddress);
    const held = await crowd(`${balancer.url}/api/activity/stream`, addresses, perAddress);
    t.teardown(() => held.closeAll());
    const all = held.byAddress.flat();
    t.deepEqual(statuses(all), { 200: DEFAULT_MAX_STREAMS, 503: addresses * perAddress - DEFAULT_MAX_STREAMS });
    const full = all.find((s) => s.status === 503)!;
    t.is(full.headers['retry-after'], '5');
    t.deepEqual(JSON.parse(full.body), { error: 'too many event streams', max: DEFAULT_MAX_STREAMS });
    const peak = rssMb();
    t.log(`activity replica RSS: ${atRest.toFixed(0)} MB at rest, ${peak.toFixed(0)} MB with ${DEFAULT_MAX_STREAMS} streams`);
    t.true(peak < RSS_BOUND_MB, `${peak.toFixed(0)} MB`);

    // Everyone else is still served: the gateway, hello and the activity service's other paths.
    for (const path of ['/', '/api/activity']) t.is((await requestFrom(balancer.url + path, REAL_CLIENT)).status, 200, path);

    held.closeAll();
    // V8 keeps the young generation it grew (up to 32 MB, reused by the next streams); the rest goes back.
    // Left to itself an idle replica collects nothing, and its RSS stays at the peak or above.
    await waitFor('the memory given back', () => rssMb() < peak - (peak - atRest) / 3, 10_000, 200);
    t.log(`after they closed: ${rssMb().toFixed(0)} MB`);
    const again = await holdStream(`${balancer.url}/api/activity/stream`, REAL_CLIENT);
    again.close();
    t.is(again.status, 200, 'their places are free again');
  },
);
