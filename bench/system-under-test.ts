import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BALANCER_BUNDLE, upstreamsOf, type BalancerStatusJson } from '../harness/balancer';
import { startConsul, type ConsulAgent } from '../harness/consul';
import { freePort, freePorts } from '../harness/ports';
import { startProcess, waitFor, type Managed } from '../harness/processes';
import { SERVICE_BUNDLE, replicaEnv, type Replica } from '../harness/service';
import { pinnedCommand, pinProcess } from './pinning';
import { childrenOf, processTable, readStat } from './proc-stats';

export const SERVICE_NAME = 'hello';

export interface NginxProcesses {
  master?: number;
  workers: number[];
}

/** Consul, the balancer (watcher + nginx) and service replicas, all on loopback and all on the test core. */
export interface SystemUnderTest {
  consul: ConsulAgent;
  consulPid: number;
  balancer: Managed;
  balancerUrl: string;
  /** The balancer's admin listener: the status and the same proxy with `X-Upstream-Addr`. */
  balancerAdminUrl: string;
  status(): Promise<BalancerStatusJson>;
  /**
   * Starts a replica on the test core; resolves as soon as the process is spawned. A replica of
   * `service` (default hello) with `env` on top of its own (e.g. ROUTES), under that service's token.
   */
  startReplica(id: string, service?: string, env?: NodeJS.ProcessEnv): Promise<BenchReplica>;
  /** Polls the balancer's status until `replica` is (or is no longer) among its upstreams. */
  waitUpstream(replica: Replica, present: boolean, timeoutMs?: number, everyMs?: number): Promise<void>;
  nginx(): NginxProcesses;
  stop(): Promise<void>;
}

export interface BenchReplica extends Replica {
  /** performance.now() right before the process was spawned. */
  spawnedAt: number;
}

export const upstreamOf = (replica: Replica): string => `127.0.0.1:${replica.port}`;

export async function startSystemUnderTest(testCpu: number | undefined): Promise<SystemUnderTest> {
  for (const bundle of [SERVICE_BUNDLE, BALANCER_BUNDLE]) {
    if (!fs.existsSync(bundle)) throw new Error(`${path.relative(process.cwd(), bundle)} is missing: run \`npm run build\` first`);
  }
  const replicas = new Set<Replica>();
  // DNS on: HAProxy, one of the peers compared with ours, follows Consul through it.
  const consul = await startConsul({ dns: true });
  // One replica token per service, asked for once (hello's, and those of the routes phase's services).
  const replicaTokens = new Map<string, Promise<string | undefined>>();
  const replicaToken = (service: string) => {
    if (!replicaTokens.has(service)) replicaTokens.set(service, consul.roleToken('replica', service));
    return replicaTokens.get(service)!;
  };
  await replicaToken(SERVICE_NAME);
  // Consul answers DNS with the agent's default token; under default deny that reads nothing. A careful
  // user gives it a token that may read the service's health (the balancer's), as Consul's ACL docs ask.
  await consul.setDefaultToken(await consul.roleToken('balancer'));
  const consulProc = childrenOf(process.pid).find((p) => p.comm === 'consul');
  if (!consulProc) throw new Error("could not find the consul agent process among the benchmark's children");
  pinProcess(consulProc.pid, testCpu);

  // Working files of the run: the balancer's nginx prefix and every process's log, removed at the end.
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-bench-'));
  const workDir = path.join(runDir, 'balancer');
  fs.mkdirSync(workDir);
  const [listenPort, adminPort] = await freePorts(2);
  const [command, args] = pinnedCommand(testCpu, process.execPath, [BALANCER_BUNDLE]);
  const balancer = startProcess(
    command,
    args,
    {
      CONSUL_HTTP_ADDR: consul.httpAddr,
      // Tokens as users give them: one per role, in the variable Consul's own tools read.
      CONSUL_HTTP_TOKEN: await consul.roleToken('balancer'),
      // The bench measures capacity from one client address (127.0.0.1), thousands of requests a second:
      // the per-client rate limit (1,000/s by default) would measure the limit instead. Off here, as for
      // every peer compared with ours (none of them has one).
      RATE_LIMIT_PER_CLIENT: '0',
      LISTEN_PORT: String(listenPort),
      LISTEN_ADDRESS: '127.0.0.1',
      ADMIN_PORT: String(adminPort),
      ADMIN_ADDRESS: '127.0.0.1',
      WORK_DIR: workDir,
    },
    { logFile: path.join(runDir, 'balancer.log') },
  );
  const balancerUrl = `http://127.0.0.1:${listenPort}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;

  const status = async (): Promise<BalancerStatusJson> => {
    const res = await fetch(`${adminUrl}/_balancer/status`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) throw new Error(`/_balancer/status answered ${res.status}`);
    return (await res.json()) as BalancerStatusJson;
  };

  const stop = async () => {
    await Promise.all([...replicas].map((r) => r.stop(3000)));
    await balancer.stop(5000);
    await consul.stop();
    fs.rmSync(runDir, { recursive: true, force: true });
  };

  try {
    await waitFor('the balancer to answer /_balancer/status', async () => (await status()).services !== undefined, 15_000, 100);
  } catch (error) {
    await stop();
    throw new Error(`${String(error)}\nbalancer output:\n${balancer.output().slice(-3000)}`, { cause: error });
  }

  return {
    consul,
    consulPid: consulProc.pid,
    balancer,
    balancerUrl,
    balancerAdminUrl: adminUrl,
    status,
    async startReplica(id, service = SERVICE_NAME, env = {}) {
      const port = await freePort();
      const token = await replicaToken(service);
      const [cmd, cmdArgs] = pinnedCommand(testCpu, process.execPath, [SERVICE_BUNDLE]);
      const spawnedAt = performance.now();
      const proc = startProcess(
        cmd,
        cmdArgs,
        { ...replicaEnv(consul.httpAddr, service, id, port, token), ...env },
        {
          logFile: path.join(runDir, `${id}.log`),
        },
      );
      const replica: BenchReplica = Object.assign(proc, { id, port, url: `http://127.0.0.1:${port}`, spawnedAt });
      replicas.add(replica);
      void proc.exited.then(() => replicas.delete(replica));
      return replica;
    },
    async waitUpstream(replica, present, timeoutMs = 15_000, everyMs = 20) {
      const address = upstreamOf(replica);
      await waitFor(
        `${replica.id} (${address}) to ${present ? 'join' : 'leave'} the balancer's upstreams`,
        async () => upstreamsOf(await status(), SERVICE_NAME).includes(address) === present,
        timeoutMs,
        everyMs,
      );
    },
    nginx() {
      return findNginx(balancer.child.pid!);
    },
    stop,
  };
}

/** nginx's master (the nginx process the watcher started) and its workers (the master's children). */
export function findNginx(watcherPid: number): NginxProcesses {
  // One read of /proc for the whole walk, not one per process visited.
  const table = processTable();
  const queue = [watcherPid];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const child of childrenOf(pid, table)) {
      if (child.comm === 'nginx') {
        const workers = childrenOf(child.pid, table)
          .filter((w) => w.comm === 'nginx')
          .map((w) => w.pid);
        return { master: child.pid, workers };
      }
      queue.push(child.pid);
    }
  }
  return { workers: [] };
}

/** CPU time nginx's workers have used so far, those already replaced by a reload included (µs). */
export function nginxWorkersCpuUs(nginx: NginxProcesses): number {
  if (!nginx.master) return Number.NaN;
  const master = readStat(nginx.master);
  let total = master?.reapedChildrenCpuUs ?? 0;
  for (const worker of nginx.workers) total += readStat(worker)?.cpuUs ?? 0;
  return total;
}
