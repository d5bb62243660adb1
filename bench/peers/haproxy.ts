import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../../harness/ports';
import { startProcess, waitFor } from '../../harness/processes';
import { upstreamOf } from '../system-under-test';
import { pinnedCommand } from '../pinning';
import { cpuOf, type Peer } from './peer';

export interface HaproxySettings {
  listenPort: number;
  /** Consul's DNS port on 127.0.0.1. */
  dnsPort: number;
  serviceName: string;
  /** Runtime API socket, where the benchmark reads which servers are up. */
  statsSocket: string;
  /** Server slots the template creates: the most replicas the benchmark ever runs at once, with room. */
  slots: number;
}

/**
 * HAProxy 2.6 following Consul through DNS SRV records, as a careful user sets it up (bench/README.md
 * gives each setting and why). A pure function of its settings, so the README and the run agree.
 */
export function renderHaproxyConfig(s: HaproxySettings): string {
  return [
    'global',
    // One thread on the one test core, as our nginx runs one worker there.
    '  nbthread 1',
    `  stats socket ${s.statsSocket} mode 600 level operator`,
    '',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-keep-alive 30s',
    '  timeout check 1s',
    // A refused or reset connection is retried, on another server (redispatch on every retry), as nginx's
    // proxy_next_upstream does for ours; an empty answer on a reused idle connection is retried as well.
    '  retries 2',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response',
    '',
    'resolvers consul',
    `  nameserver consul 127.0.0.1:${s.dnsPort}`,
    '  accepted_payload_size 8192',
    '  resolve_retries 3',
    '  timeout resolve 1s',
    '  timeout retry 1s',
    '  hold valid 1s',
    '  hold obsolete 0s',
    '',
    'frontend public',
    `  bind 127.0.0.1:${s.listenPort}`,
    '  default_backend service',
    '',
    'backend service',
    '  balance roundrobin',
    '  option httpchk',
    // HTTP/1.1 with a Host header: Node answers 400 to a request without one, as HAProxy's bare check sends.
    '  http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost',
    '  http-check expect status 200',
    '  default-server inter 1s fall 2 rise 1',
    `  server-template ${s.serviceName} ${s.slots} _${s.serviceName}._tcp.service.consul resolvers consul resolve-prefer ipv4 init-addr none resolve-opts allow-dup-ip check`,
    '',
  ].join('\n');
}

/** One command on HAProxy's runtime API socket; its whole answer. */
function runtimeCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socket);
    let out = '';
    conn.setTimeout(2000, () => conn.destroy(new Error(`no answer to "${command}" on ${socket} within 2 s`)));
    conn.on('data', (chunk: Buffer) => (out += chunk.toString()));
    conn.on('end', () => resolve(out));
    conn.on('error', reject);
    conn.write(`${command}\n`);
  });
}

/** Addresses of the servers HAProxy sends traffic to (status UP, or UP and going down), from `show stat`. */
export function serversInRotation(csv: string, backend: string): string[] {
  const [header, ...rows] = csv.trim().split('\n');
  const columns = header.replace(/^# /, '').split(',');
  const [px, sv, status, addr] = ['pxname', 'svname', 'status', 'addr'].map((name) => columns.indexOf(name));
  if ([px, sv, status, addr].includes(-1)) throw new Error(`HAProxy's show stat lacks pxname, svname, status or addr: ${header}`);
  return rows
    .map((row) => row.split(','))
    .filter((f) => f[px] === backend && f[sv] !== 'BACKEND' && /^UP\b/.test(f[status]))
    .map((f) => f[addr]);
}

/** Starts HAProxy on the test core with its files in `dir`; resolves once its runtime API answers. */
export async function startHaproxyPeer(dir: string, dnsPort: number, serviceName: string, testCpu: number | undefined): Promise<Peer> {
  fs.mkdirSync(dir, { recursive: true });
  const listenPort = await freePort();
  const statsSocket = path.join(dir, 'haproxy.sock');
  const config = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(config, renderHaproxyConfig({ listenPort, dnsPort, serviceName, statsSocket, slots: 8 }));
  // -db: in the foreground, one process (no master), so its pid is the whole balancer.
  const [command, args] = pinnedCommand(testCpu, 'haproxy', ['-db', '-f', config]);
  const proc = startProcess(command, args, {}, { logFile: path.join(dir, 'haproxy.log') });
  const stat = () => runtimeCommand(statsSocket, 'show stat');
  try {
    await waitFor(
      'haproxy to answer on its runtime API',
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`haproxy exited: ${proc.output().slice(-2000)}`);
        return (await stat()).startsWith('# pxname');
      },
      10_000,
      50,
    );
  } catch (error) {
    await proc.stop(2000);
    throw error;
  }
  const pids = () => (proc.child.exitCode === null ? [proc.child.pid!] : []);
  return {
    name: 'haproxy-dns',
    description: `HAProxy 2.6: server-template over Consul DNS SRV _${serviceName}._tcp.service.consul, active HTTP checks`,
    url: `http://127.0.0.1:${listenPort}`,
    discovers: true,
    inRotation: async (replica) => serversInRotation(await stat(), 'service').includes(upstreamOf(replica)),
    pids,
    cpuUs: () => cpuOf(pids()),
    stop: async () => void (await proc.stop(3000)),
  };
}
