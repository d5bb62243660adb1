import fs from 'node:fs';
import path from 'node:path';
import { ACCESS_LOG_FORMAT, PROXY_DIRECTIVES } from '../../balancer/render';
import { requestOnce } from '../../harness/load';
import { freePort } from '../../harness/ports';
import { startProcess, waitFor } from '../../harness/processes';
import type { Replica } from '../../harness/service';
import { pinnedCommand } from '../pinning';
import { childrenOf } from '../proc-stats';
import { upstreamOf } from '../system-under-test';
import { cpuOf, type Peer } from './peer';

export interface StaticNginxSettings {
  dir: string;
  listenPort: number;
  upstreams: string[];
  /** Our JSON access log to stdout (a file here, as the balancer's stdout is in the benchmark), or none. */
  jsonAccessLog: boolean;
}

/**
 * nginx with a hand-written upstream list, as a careful user writes it: upstream keepalive, the same
 * timeouts, passive failure marking and retries as our rendered config, no watcher and no reloads
 * but the hand edits. The log format and the proxying are our balancer's own (balancer/nginx.conf.template).
 */
export function renderStaticNginxConfig(s: StaticNginxSettings): string {
  return [
    'daemon off;',
    'worker_processes 1;',
    'worker_shutdown_timeout 30s;',
    `pid ${s.dir}/nginx.pid;`,
    'error_log stderr warn;',
    'events {',
    '  worker_connections 1024;',
    '}',
    'http {',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${s.dir}/temp/${t};`),
    ...ACCESS_LOG_FORMAT,
    s.jsonAccessLog ? '  access_log /dev/stdout json_lines;' : '  access_log off;',
    '  server_tokens off;',
    '  client_max_body_size 1m;',
    '  client_header_timeout 10s;',
    '  client_body_timeout 10s;',
    '  send_timeout 30s;',
    '  keepalive_timeout 30s;',
    '  upstream service {',
    ...s.upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=2s;`),
    '    keepalive 32;',
    '    keepalive_timeout 4s;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${s.listenPort};`,
    '    location / {',
    '      proxy_pass http://service;',
    // The same proxying as ours (timeouts, keep-alive, retry on another replica).
    ...PROXY_DIRECTIVES,
    // As ours: the benchmark reads the retries a dead replica causes from it.
    '      add_header X-Upstream-Addr $upstream_addr always;',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Starts nginx on the test core with `replicas` as its upstream list; resolves once it proxies to them. */
export async function startStaticNginxPeer(
  dir: string,
  replicas: Replica[],
  jsonAccessLog: boolean,
  testCpu: number | undefined,
): Promise<Peer> {
  fs.mkdirSync(path.join(dir, 'temp'), { recursive: true });
  const listenPort = await freePort();
  const url = `http://127.0.0.1:${listenPort}`;
  const conf = path.join(dir, 'nginx.conf');
  const write = (upstreams: Replica[]) =>
    fs.writeFileSync(conf, renderStaticNginxConfig({ dir, listenPort, upstreams: upstreams.map(upstreamOf), jsonAccessLog }));
  write(replicas);
  const [command, args] = pinnedCommand(testCpu, 'nginx', ['-e', 'stderr', '-p', `${dir}/`, '-c', conf]);
  // taskset execs nginx, so the child is nginx's master; its stdout (the access log) goes to a file.
  const master = startProcess(command, args, {}, { logFile: path.join(dir, 'nginx.log') });
  const workers = () => childrenOf(master.child.pid!).map((p) => p.pid);
  const pids = () => (master.child.exitCode === null ? [master.child.pid!, ...workers()] : []);
  const servedBy = (replica: Replica) =>
    waitFor(`static nginx to proxy to ${replica.id}`, async () => (await requestOnce(`${url}/`, 1000)).instance === replica.id, 10_000, 20);
  try {
    if (replicas[0]) await servedBy(replicas[0]);
  } catch (error) {
    await master.stop(2000);
    throw new Error(`${String(error)}\nnginx output:\n${master.output().slice(-2000)}`, { cause: error });
  }
  return {
    name: jsonAccessLog ? 'nginx-static-log' : 'nginx-static',
    description: `nginx, static upstream list (hand edit + reload), passive max_fails=1 fail_timeout=2s, access log ${jsonAccessLog ? 'JSON (ours)' : 'off'}`,
    url,
    discovers: false,
    pids,
    cpuUs: () => cpuOf(pids()),
    async setUpstreams(upstreams) {
      const before = new Set(workers());
      write(upstreams);
      master.child.kill('SIGHUP');
      // Reloaded once every worker is new: the old ones finished their requests and exited.
      await waitFor(
        'static nginx to replace its workers after the reload',
        () => {
          const now = workers();
          return now.length > 0 && now.every((pid) => !before.has(pid));
        },
        10_000,
        20,
      );
      for (const replica of upstreams) await servedBy(replica);
    },
    stop: async () => void (await master.stop(3000)),
  };
}
