// The faults `npm run test:mutations` (test/mutations/run.ts) injects, one at a time, into a scratch copy.
// Each names the tests that must catch it. A search text must occur exactly once in its file: when the
// product changes under it the script fails, and the entry must be brought up to date, not dropped.
import fs from 'node:fs';
import path from 'node:path';

export interface Patch {
  /** Repository-relative path of the product file. */
  file: string;
  search: string;
  replace: string;
}

/** Why `patch` cannot be applied under `root` (its file missing, its search text not there exactly once), or null. */
export function patchProblem(root: string, patch: Patch): string | null {
  const file = path.join(root, patch.file);
  if (!fs.existsSync(file)) return `${patch.file} does not exist`;
  const count = fs.readFileSync(file, 'utf8').split(patch.search).length - 1;
  return count === 1
    ? null
    : `${patch.file}: the search text occurs ${count} times (must be once): ${JSON.stringify(patch.search.slice(0, 80))}`;
}

export interface Fault {
  id: string;
  /** What the fault breaks, in the product's terms. */
  breaks: string;
  patches: Patch[];
  /** Test files (repository-relative) that must catch it. */
  tests: string[];
  /** Only the tests whose titles match (ava --match), for speed; serial files that build on earlier steps run whole. */
  match?: string[];
  /** Environment of the test run (a dependency made unreachable). */
  env?: Record<string, string>;
  /** The bundles are built before the patch instead of after it: a stale bundle. */
  stale?: boolean;
  timeoutS?: number;
}

const E2E = 'test/integration/balancer-e2e.test.ts';
const REPLICAS = 'test/integration/service-replicas.test.ts';
const USERS = 'test/integration/service-users-store.test.ts';
const COLLECTOR = 'test/integration/collector-syslog.test.ts';
const EVIDENCE_PAGE = 'test/integration/evidence-page.test.ts';
const EVENTS = 'test/integration/events.test.ts';
const GATEWAY = 'test/integration/gateway.test.ts';
const STREAM_LIMITS = 'test/integration/stream-limits.test.ts';

export const FAULTS: Fault[] = [
  // The three gaps of issue 17.
  {
    id: 'reload-without-old-worker-wait',
    breaks: 'Nginx.reload returns as soon as a new worker answers, while old workers still accept with the old config',
    patches: [
      {
        file: 'balancer/nginx.ts',
        search: 'while ((await workersStillListening(listeners, oldWorkers)).length > 0) {',
        replace: 'while (false && (await workersStillListening(listeners, oldWorkers)).length > 0) {',
      },
    ],
    tests: [E2E],
  },
  {
    id: 'sigterm-exits-at-once',
    breaks: 'a replica exits on SIGTERM at once: no health 503, no deregistration, no drain',
    patches: [
      {
        file: 'replica/drain.ts',
        search: "  process.on('SIGTERM', handle);",
        replace: "  process.on('SIGTERM', () => process.exit(0));",
      },
    ],
    tests: [E2E],
  },
  {
    id: 'no-leave-delay',
    breaks:
      'a replica stops accepting and closes its pooled keep-alive connections as soon as it left Consul, before the balancer dropped it (the e2e loop then saw 1-2 POSTs answered 502 in most runs)',
    patches: [{ file: 'replica/lifecycle.ts', search: 'await new Promise((r) => setTimeout(r, LEAVE_DELAY_MS));', replace: '' }],
    tests: [REPLICAS],
    match: ['SIGTERM*'],
  },
  {
    id: 'empty-set-grace-disabled',
    breaks: 'right after a Consul outage the balancer applies an empty set at once',
    patches: [
      { file: 'balancer/consul-windows.ts', search: '      if (graceMs <= 0 || Date.now() < until) return;', replace: '      return;' },
    ],
    tests: [E2E],
  },
  // One per weak assertion of issue 17.
  {
    id: 'reload-log-line-lost',
    breaks: "the balancer no longer logs 'nginx reloaded' (the e2e bound over no lines was true)",
    patches: [
      { file: 'balancer/apply.ts', search: "o.logger.info('nginx reloaded', {", replace: "o.logger.info('nginx config applied', {" },
    ],
    tests: [E2E],
  },
  {
    id: 'client-abort-answered-500',
    breaks: 'a request whose body the client cut short is treated as a server error',
    patches: [{ file: 'service/app.ts', search: "whole request' }, 400, CLOSE);", replace: "whole request' }, 500, CLOSE);" }],
    tests: [REPLICAS],
    match: ['malformed and hostile*'],
  },
  {
    id: 'client-abort-not-recognized',
    breaks: 'a request whose sender vanished mid-body (truncated chunked body) is an unhandled server error',
    patches: [
      {
        file: 'service/app.ts',
        search:
          "return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || error.message === 'aborted' || error.name === 'AbortError';",
        replace: 'return false;',
      },
    ],
    tests: [REPLICAS],
    match: ['malformed and hostile*'],
  },
  {
    id: 'cut-short-body-unanswered',
    breaks: 'a request the HTTP parser refuses (a body cut short) gets no answer at all',
    patches: [
      {
        file: 'replica/listen.ts',
        search: '  ) as HttpServer;\n',
        replace: "  ).on('clientError', (_error: Error, socket: { destroy(): void }) => socket.destroy()) as HttpServer;\n",
      },
    ],
    tests: [REPLICAS],
    match: ['malformed and hostile*'],
  },
  {
    id: 'body-limit-raised',
    breaks: 'the users API reads bodies of 2 MiB (limit 64 KiB)',
    patches: [
      {
        file: 'service/app.ts',
        search: 'export const MAX_BODY_BYTES = 64 * 1024;',
        replace: 'export const MAX_BODY_BYTES = 2 * 1024 * 1024;',
      },
    ],
    tests: [REPLICAS],
    match: ['malformed and hostile*'],
  },
  {
    id: 'draining-not-logged',
    breaks: "a replica no longer logs 'draining' on SIGTERM (an indexOf of -1 passed the order check)",
    patches: [{ file: 'replica/lifecycle.ts', search: "    logger.info('draining', { signal });\n", replace: '' }],
    tests: [REPLICAS],
    match: ['SIGTERM*'],
  },
  {
    id: 'update-without-check-and-set',
    breaks: 'a user update writes blindly: an update racing a delete brings the user back',
    patches: [
      {
        file: 'service/consul-users-store.ts',
        search: "{ KV: { Verb: 'cas', Key: this.key(id), Index: current.index, Value: encode(JSON.stringify(user)) } },",
        replace: "{ KV: { Verb: 'set', Key: this.key(id), Value: encode(JSON.stringify(user)) } },",
      },
    ],
    tests: [USERS],
  },
  {
    id: 'collector-tag-not-sanitized',
    breaks: "a container tag with '../' writes outside the collector's log directory",
    patches: [{ file: 'collector/syslog-ng.conf', search: '$(sanitize ${PROGRAM:-unknown}).log', replace: '${PROGRAM:-unknown}.log' }],
    tests: [COLLECTOR],
    match: ['syslog-ng with the collector config*'],
  },
  {
    id: 'docker-engine-missing',
    breaks: 'no Docker engine answers: the collector image test must fail naming docker, not skip',
    patches: [],
    env: { DOCKER_HOST: 'unix:///nonexistent/cnp-mutations-docker.sock' },
    tests: [COLLECTOR],
    match: ['the collector image*'],
  },
  {
    id: 'consul-not-installed',
    breaks: 'consul is not on PATH: the tests that need it must fail naming it',
    patches: [],
    env: { PATH: '/nonexistent-cnp-mutations' },
    tests: [USERS],
  },
  {
    id: 'stale-service-bundle',
    breaks: 'a test file run alone after a source change, without `npm run build`',
    stale: true,
    patches: [
      {
        file: 'service/app.ts',
        search: "c.json({ status: 'ok', instance: deps.serviceId, ...outbox })",
        replace: "c.json({ status: 'ok', instance: deps.serviceId, ...outbox }, 500)",
      },
    ],
    tests: [REPLICAS],
    match: ['three replicas register*'],
  },
  {
    id: 'consul-backoff-uncapped',
    breaks: 'every retry backoff (the gateway during a Consul outage, the relay and the consumer without a broker) doubles without its cap',
    patches: [
      {
        file: 'lib/backoff.ts',
        search: '  return Math.min(timing.maxMs, timing.firstMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30));',
        replace: '  return timing.firstMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30);',
      },
    ],
    tests: ['test/unit/events-rules.test.ts'],
  },
  {
    id: 'apply-max-delay-ignored',
    breaks: 'a burst of changes that never pauses postpones every reload',
    patches: [
      {
        file: 'balancer/apply.ts',
        search: 'const due = Math.min(lastRequestAt + debounceMs, firstRequestAt + maxDelayMs);',
        replace: 'const due = lastRequestAt + debounceMs;',
      },
    ],
    tests: ['test/unit/balancer-apply.test.ts'],
  },
  // Faults of our own, across the service, the balancer, the program and the collector.
  {
    id: 'drain-unbounded',
    breaks: 'a request that never ends holds a replica past its drain deadline',
    patches: [{ file: 'replica/drain.ts', search: '      server.closeAllConnections();\n', replace: '' }],
    tests: ['test/unit/replica-drain.test.ts'],
  },
  {
    id: 'health-200-while-draining',
    breaks: '/health keeps answering 200 while the replica drains',
    patches: [
      {
        file: 'service/app.ts',
        search: "c.json({ status: 'draining', instance: deps.serviceId, ...outbox }, 503)",
        replace: "c.json({ status: 'draining', instance: deps.serviceId, ...outbox }, 200)",
      },
    ],
    tests: ['test/unit/service-app.test.ts'],
  },
  {
    id: 'no-registration-after-agent-restart',
    breaks: 'a replica never notices that a restarted Consul agent forgot it',
    patches: [
      { file: 'replica/registration.ts', search: '} else if (!(await api.isRegistered(service.id))) {', replace: '} else if (false) {' },
    ],
    tests: [REPLICAS],
    match: ['Consul agent restart*'],
  },
  {
    id: 'no-retry-on-another-replica',
    breaks: 'nginx no longer retries a request that failed to connect on another replica',
    patches: [
      {
        file: 'balancer/nginx.conf.template',
        search: '      proxy_next_upstream error timeout;',
        replace: '      proxy_next_upstream off;',
      },
    ],
    tests: [E2E],
  },
  {
    id: 'nginx-t-skipped',
    breaks: 'the balancer installs a rendered config without `nginx -t`',
    patches: [
      { file: 'balancer/nginx.ts', search: '        if (code === 0) return resolve(null);', replace: '        return resolve(null);' },
    ],
    tests: [E2E],
  },
  {
    id: 'restart-policy-no',
    breaks: 'containers are declared without a restart policy: a crashed replica stays down',
    patches: [
      {
        file: 'infra/container-settings.ts',
        search: "export const RESTART_POLICY = 'unless-stopped';",
        replace: "export const RESTART_POLICY = 'no';",
      },
    ],
    tests: ['test/unit/infra-stack.test.ts'],
  },
  {
    id: 'log-driver-blocking',
    breaks: "a collector outage blocks every container's writes to stdout",
    patches: [{ file: 'infra/collector.ts', search: "        mode: 'non-blocking',\n", replace: '' }],
    tests: ['test/unit/infra-stack.test.ts'],
  },
  {
    id: 'replica-drain-grace-short',
    breaks: 'a replica is killed 1 s after SIGTERM, before it can drain',
    patches: [
      {
        file: 'infra/container-settings.ts',
        search: 'export const REPLICA_DRAIN_SECONDS = 15;',
        replace: 'export const REPLICA_DRAIN_SECONDS = 1;',
      },
    ],
    tests: ['test/unit/infra-stack.test.ts'],
  },
  {
    id: 'collector-udp-dropped',
    breaks: 'the collector no longer listens for syslog over UDP',
    patches: [
      {
        file: 'collector/source-tcp.conf',
        search: '  network(transport("udp") ip(`COLLECTOR_LISTEN`) port(`COLLECTOR_PORT`) flags(syslog-protocol));\n',
        replace: '',
      },
    ],
    tests: [COLLECTOR],
    match: ['syslog-ng with the collector config*'],
  },
  {
    id: 'collector-combined-file-unnamed',
    breaks: 'all.log lines no longer name the container they came from',
    patches: [
      {
        file: 'collector/syslog-ng.conf',
        search: 'template("${ISODATE} ${PROGRAM} ${MSG}\\n")',
        replace: 'template("${ISODATE} ${MSG}\\n")',
      },
    ],
    tests: [COLLECTOR],
    match: ['syslog-ng with the collector config*'],
  },
  {
    id: 'evidence-page-markup',
    breaks: "the evidence page writes its tables' cells as markup, so a service ID or an event's user id with HTML in it becomes elements",
    patches: [
      {
        file: 'balancer/page/page.ts',
        search: "    const td = element('td', name, text);\n",
        replace: "    const td = element('td', name);\n    td.innerHTML = text;\n",
      },
    ],
    tests: [EVIDENCE_PAGE],
  },
  {
    id: 'evidence-streams-held-at-stop',
    breaks: "the watcher stops nginx with the evidence page's event streams still open, so nginx's graceful stop waits 30 s for them",
    patches: [
      {
        file: 'balancer/main.ts',
        search: '    evidence.close();\n',
        replace: '',
      },
    ],
    tests: [EVIDENCE_PAGE],
  },
  {
    id: 'activity-relay-held-at-stop',
    breaks:
      "the watcher stops nginx with the evidence page's relayed activity streams still open, so nginx's graceful stop waits 30 s for them",
    patches: [{ file: 'balancer/evidence-page.ts', search: '      activity.close();\n', replace: '' }],
    tests: [EVIDENCE_PAGE],
  },
  {
    id: 'activity-relay-kept-at-reload',
    breaks: "a reload leaves the relayed activity streams open, holding nginx's old workers until worker_shutdown_timeout",
    patches: [{ file: 'balancer/evidence-activity.ts', search: '      upstream.destroy();\n      res.end();\n', replace: '' }],
    tests: ['test/unit/balancer-evidence.test.ts'],
    match: ['the activity stream is relayed*'],
  },
  {
    id: 'activity-unavailable-as-error',
    breaks:
      'with no activity service routed, the relay answers 404, which Chromium logs as a console error (and EventSource stops retrying)',
    patches: [
      {
        file: 'balancer/evidence-activity.ts',
        search: '    res.writeHead(200, streamHeaders);\n    res.end(unavailableMessage(u));\n',
        replace: "    res.writeHead(404, { ...streamHeaders, 'content-type': 'application/json' });\n    res.end(JSON.stringify(u));\n",
      },
    ],
    tests: [EVIDENCE_PAGE],
  },
  // Issue 14, defect 5 and item 6.
  {
    id: 'root-filesystem-writable',
    breaks: "containers' root filesystems are writable again",
    patches: [{ file: 'infra/container-settings.ts', search: '    readOnly: true,\n', replace: '' }],
    tests: ['test/unit/infra-stack.test.ts'],
    match: ['every container is hardened*'],
  },
  {
    id: 'capabilities-kept',
    breaks: 'containers keep the default capabilities',
    patches: [{ file: 'infra/container-settings.ts', search: "drops: ['ALL']", replace: 'drops: []' }],
    tests: ['test/unit/infra-stack.test.ts'],
    match: ['every container is hardened*'],
  },
  {
    id: 'collector-published-on-bind-address',
    breaks: 'the syslog port follows bindAddress, so an exposed bind address exposes the unauthenticated listener',
    patches: [
      {
        file: 'infra/collector.ts',
        search: "  return net.isIPv6(bindAddress) ? '::1' : '127.0.0.1';",
        replace: '  return bindAddress;',
      },
    ],
    tests: ['test/unit/infra-stack.test.ts'],
    match: ['only the balancer (public and admin), Consul and syslog ports are published*'],
  },
  {
    id: 'collector-prune-ignores-age',
    breaks: 'past days older than COLLECTOR_KEEP_DAYS are kept',
    patches: [{ file: 'collector/prune.sh', search: '  if [ "${path##*/}" \\< "$oldest_kept" ]; then', replace: '  if false; then' }],
    tests: [COLLECTOR],
    match: ['prune.sh deletes*'],
  },
  // The events (issue 12).
  {
    id: 'event-outside-the-transaction',
    breaks: 'a user change commits without its event in the outbox, so nothing is published',
    patches: [
      {
        file: 'service/consul-users-store.ts',
        search: '    const all = [...operations, entry];',
        replace: '    const all = [...operations];',
      },
    ],
    tests: [USERS, EVENTS],
    match: ['users are kept one KV key each*', 'a user created, changed and deleted*'],
  },
  {
    id: 'relay-gives-up-on-failure',
    breaks: 'the outbox relay stops at its first failure (broker down), so the events kept during an outage are never published',
    patches: [
      {
        file: 'service/outbox-relay.ts',
        search: '        await ownWake.sleep(retryDelayMs(failures, retry));\n',
        replace: '        return;\n',
      },
      {
        file: 'service/outbox-relay.ts',
        search: '        await followWake.sleep(retryDelayMs(failures, retry));\n',
        replace: '        return;\n',
      },
    ],
    tests: [EVENTS],
    match: ['the broker stopped for 10 s*'],
  },
  // The outbox of issue 25.
  {
    id: 'relay-deletes-without-ack',
    breaks: 'the relay deletes an entry whether or not the broker acked its publish, so a refused event is lost',
    patches: [
      {
        file: 'service/outbox-relay.ts',
        search: "const acked = batch.filter((_, i) => acks[i].status === 'fulfilled').map((entry) => entry.key);",
        replace: 'const acked = batch.map((entry) => entry.key);',
      },
    ],
    tests: [EVENTS],
    match: ['an event the broker takes but does not ack*'],
  },
  {
    id: 'every-relay-publishes-every-entry',
    breaks: 'every replica publishes every entry as soon as it sees it: N publishes per write',
    patches: [
      {
        file: 'service/outbox-relay.ts',
        search: '    return Math.max(writtenAt, connected) + takeoverMs;',
        replace: '    return writtenAt + 0 * connected;',
      },
      { file: 'service/outbox-relay.ts', search: 'const LIST_INTERVAL_MS = 1000;', replace: 'const LIST_INTERVAL_MS = 0;' },
    ],
    tests: [EVENTS],
    match: ['three replicas write*'],
  },
  {
    id: 'outbox-unbounded',
    breaks: 'a write is accepted whatever the outbox holds',
    patches: [
      {
        file: 'service/outbox-relay.ts',
        search: '      if (count >= o.maxEntries) throw new OutboxFullError(count, o.maxEntries);',
        replace: '      if (count < 0) throw new OutboxFullError(count, o.maxEntries);',
      },
    ],
    tests: [EVENTS],
    match: ['the broker stopped: the outbox fills*'],
  },
  {
    id: 'write-sorts-the-listing',
    breaks: "a write re-sorts the replica's cached key listing: work proportional to the users on every create",
    patches: [
      {
        file: 'service/consul-users-store.ts',
        search: '    this.ownChanges.set(id, { present, at: now });',
        replace:
          '    this.ownChanges.set(id, { present, at: now });\n    if (this.keyList) this.keyList = { ...this.keyList, ids: [...this.keyList.ids, id].sort() };',
      },
    ],
    tests: ['test/unit/service-write-cost.test.ts'],
  },
  {
    id: 'activity-consumer-not-durable-across-restarts',
    breaks: 'each run of an activity replica gets a new durable consumer, leaving the last one on the broker until its inactive threshold',
    patches: [
      {
        file: 'activity/main.ts',
        search: 'durable: durableName(config.serviceId),',
        replace: 'durable: durableName(`${config.serviceId}-${process.pid}`),',
      },
    ],
    tests: [EVENTS],
    match: ['the activity service stopped*'],
  },
  {
    id: 'activity-feed-keeps-duplicates',
    breaks: 'the activity feed keeps and pushes an event id it has seen',
    patches: [{ file: 'activity/feed.ts', search: '    if (this.seen.has(event.id)) return false;\n', replace: '' }],
    tests: ['test/unit/activity-feed-sse.test.ts', 'test/unit/activity-app.test.ts'],
  },
  {
    id: 'sse-slow-client-never-cut',
    breaks: 'a stream client that reads nothing is never disconnected: its queue grows with every event',
    patches: [{ file: 'activity/sse.ts', search: '    if (this.queue.length >= this.limit) {', replace: '    if (false) {' }],
    tests: ['test/unit/activity-feed-sse.test.ts', 'test/unit/activity-app.test.ts'],
  },
  // The gateway of issue 12.
  {
    id: 'route-path-unchecked',
    breaks: 'a route tag with nginx syntax, spaces or a reserved path reaches the rendered config',
    patches: [{ file: 'lib/routes.ts', search: "  if (path === '') return 'is empty';\n", replace: '  return null;\n' }],
    tests: ['test/unit/lib-routes.test.ts', GATEWAY],
  },
  {
    id: 'route-conflict-newer-wins',
    breaks: 'a newer service claiming a route already held takes it from the older one',
    patches: [
      {
        file: 'balancer/routing.ts',
        search: '[...rivals].sort((a, b) => a.createIndex - b.createIndex || compare(a.name, b.name))',
        replace: '[...rivals].sort((a, b) => b.createIndex - a.createIndex || compare(a.name, b.name))',
      },
    ],
    tests: ['test/unit/balancer-routing.test.ts'],
  },
  {
    id: 'rate-limit-never-rendered',
    breaks: 'the per-client rate limit is configured but never applied to the public listener',
    patches: [
      {
        file: 'balancer/nginx.conf.template',
        search: '    limit_req zone=rate_per_client burst={{burst}} nodelay;',
        replace: '    # limit_req zone=rate_per_client burst={{burst}} nodelay;',
      },
    ],
    tests: [GATEWAY],
    match: ['per-client rate limit*'],
  },
  {
    id: 'new-durable-replays-stream',
    breaks: "a new activity replica's durable starts at the stream's first event and replays it all",
    patches: [
      {
        file: 'activity/consumer.ts',
        search: 'opt_start_seq: readUpTo > 0 ? readUpTo + 1 : (history?.from ?? 1),',
        replace: 'opt_start_seq: 1,',
      },
    ],
    tests: [EVENTS],
    match: ['a new activity replica starts*'],
  },
  {
    id: 'activity-history-not-read',
    breaks: 'an activity replica starts with an empty feed instead of the stream’s last events',
    patches: [
      { file: 'activity/consumer.ts', search: '      if (history) await readHistory(nc, history.from, history.to);\n', replace: '' },
    ],
    tests: [EVENTS],
    match: ['an activity replica killed (SIGKILL) and started again*'],
  },
  {
    id: 'activity-reconnect-resends-seen-events',
    breaks: 'a client reconnecting with Last-Event-ID to a replica that is behind gets again the events it has seen',
    patches: [{ file: 'activity/app.ts', search: '          if (seq <= skipThrough!) continue;\n', replace: '' }],
    tests: ['test/unit/activity-app.test.ts'],
  },
  {
    id: 'activity-durable-threshold-ignored',
    breaks: 'ACTIVITY_DURABLE_INACTIVE_SECONDS is read but the durable always gets an hour, so a scaled-away replica’s durable stays',
    patches: [
      {
        file: 'activity/consumer.ts',
        search: 'inactive_threshold: nanos(o.durableInactiveMs),',
        replace: 'inactive_threshold: nanos(3_600_000),',
      },
    ],
    tests: [EVENTS],
    match: ['a stopped replica’s durable is removed*'],
  },
  // Issue 26: paths owned by the operator, streams bounded per client.
  {
    id: 'route-owners-ignored',
    breaks: "ROUTE_OWNERS is read but a service's tags still decide: a hello instance takes the activity stream",
    patches: [
      {
        file: 'balancer/routing.ts',
        search: '      const notOwned = owners && ownershipProblem(owners, claim.name, parsed);',
        replace: '      const notOwned = null;',
      },
    ],
    tests: ['test/unit/balancer-routing.test.ts', 'test/integration/route-owners.test.ts'],
  },
  {
    id: 'stream-limit-never-rendered',
    breaks: 'the per-address stream limit is configured but never applied to the public listener',
    patches: [
      {
        file: 'balancer/nginx.conf.template',
        search: '    limit_conn streams_per_client {{stream_limit}};',
        replace: '    # limit_conn streams_per_client {{stream_limit}};',
      },
    ],
    tests: [STREAM_LIMITS],
    match: ['one address holds at most*'],
  },
  {
    id: 'activity-streams-uncapped',
    breaks: 'the activity service accepts every stream: a crowd of readers grows its memory without bound',
    patches: [{ file: 'activity/sse.ts', search: '    if (this.clients.size >= this.options.maxClients) return undefined;', replace: '' }],
    tests: ['test/unit/activity-stream-cap.test.ts', STREAM_LIMITS],
  },
  {
    id: 'closed-streams-memory-kept',
    breaks: 'the heap closed streams grew stays with the idle activity replica',
    patches: [{ file: 'activity/sse.ts', search: '      after.reclaim();', replace: '' }],
    tests: ['test/unit/activity-stream-cap.test.ts', STREAM_LIMITS],
  },
];
