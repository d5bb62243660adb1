// The balancer's entrypoint: config in, status server and nginx up, then follow Consul until SIGTERM.
import { existsSync, fstatSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../lib/config-error';
import { hostPort } from '../lib/endpoints';
import { probeAddress } from '../lib/listen-address';
import { createLogger } from '../lib/logger';
import { routeText } from '../lib/routes';
import { startAccessLogRelay } from './access-log';
import { createAdminAuth } from './admin-auth';
import { createApplier, type Applier } from './apply';
import { parseConfig, type BalancerConfig } from './config';
import { ACTIVITY_STREAM_PATH } from './evidence-activity';
import { createEvidencePage, MAX_EVIDENCE_STREAMS } from './evidence-page';
import * as evidenceAssets from 'evidence-page:assets';
import { Nginx } from './nginx';
import { renderNginxConfig, type NginxSettings } from './render';
import { nameResolver, systemLookup } from './resolve';
import { EMPTY_TABLE, type GatewayTable } from './routing';
import { createStatusStore, startStatusServer } from './status';
import { consulClient } from './consul-client';
import { droppedByService, followGateway, type Follower } from './watch';
import { claimWorkDir } from './workdir';

const logger = createLogger({ source: 'balancer' });

/** How long start-up waits for Consul's current answers before nginx starts with what it has (maybe nothing). */
const FIRST_ANSWER_MS = 1000;

/** As root, nginx workers drop to an unprivileged user; Debian bases have www-data, else nobody. */
function workerUser(): NginxSettings['workerUser'] {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8') : '';
  return /^www-data:/m.test(passwd) ? { user: 'www-data', group: 'www-data' } : { user: 'nobody', group: 'nogroup' };
}

async function prepareWorkDir(config: BalancerConfig, asRoot: boolean): Promise<string> {
  const dir = config.workDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'balancer-')));
  await fs.mkdir(path.join(dir, 'temp'), { recursive: true });
  // Workers running as www-data must traverse to their temp dirs; mkdtemp makes 0700.
  if (asRoot) await fs.chmod(dir, 0o755);
  return dir;
}

async function main(): Promise<void> {
  let config: BalancerConfig;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    logger.error(`invalid configuration: ${error.message}`);
    process.exit(2);
  }

  const user = workerUser();
  const workDir = await prepareWorkDir(config, user !== undefined);
  await claimWorkDir(workDir, logger);
  const status = createStatusStore(config.consul.url);
  const consul = consulClient(config);
  const nginx = new Nginx(config.nginxBin, workDir, logger);
  let follower: Follower | undefined;
  let applier: Applier | undefined;
  const readStatus = () => status.read();
  const evidence = createEvidencePage({
    assets: evidenceAssets,
    readStatus,
    // Through the public listener, so the panel's stream is routed and limited as a client's.
    activityStreamUrl: `${config.tls ? 'https' : 'http'}://${hostPort(probeAddress(config.listenAddress), config.listenPort)}${ACTIVITY_STREAM_PATH}`,
    // The relays all come from this process's address: no more than one client may hold there.
    maxActivityStreams: Math.min(MAX_EVIDENCE_STREAMS, config.streamLimitPerClient),
    upstreamCa: config.upstreamCaFile === undefined ? undefined : readFileSync(config.upstreamCaFile, 'utf8'),
  });
  const adminAuth = config.adminToken === undefined ? undefined : createAdminAuth(config.adminToken);
  if (!adminAuth)
    logger.warn(
      'the admin listener is open: anyone who reaches it reads the status and the evidence page; set ADMIN_TOKEN_FILE to require a token',
      {
        admin: `${config.adminAddress}:${config.adminPort}`,
      },
    );
  const statusServer = await startStatusServer(
    readStatus,
    (req, res) => (adminAuth?.routes(req, res) ?? false) || evidence.routes(req, res),
  );

  // nginx opens /dev/stdout itself when it is a pipe, file or terminal (a container's stdout), at no cost
  // to the watcher; only under a socket, which nginx cannot open, do its lines go through our relay.
  const relay = fstatSync(1).isSocket() ? await startAccessLogRelay() : undefined;
  const settings: NginxSettings = {
    listenAddress: config.listenAddress,
    listenPort: config.listenPort,
    tls: config.tls,
    upstreamCaFile: config.upstreamCaFile,
    adminTls: config.adminTls,
    adminAddress: config.adminAddress,
    adminPort: config.adminPort,
    reusePort: config.reusePort,
    connLimitPerClient: config.connLimitPerClient,
    rateLimitPerClient: config.rateLimitPerClient,
    rateBurstPerClient: config.rateBurstPerClient,
    streamPaths: config.streamPaths,
    streamLimitPerClient: config.streamLimitPerClient,
    workDir,
    statusPort: statusServer.port,
    adminLogin: adminAuth !== undefined,
    accessLog: relay ? { relayPort: relay.port } : { stdout: true },
    workerProcesses: os.availableParallelism(),
    workerUser: user,
  };
  const renderText = (table: GatewayTable, generation: number) => renderNginxConfig(settings, table, generation);

  // Signals are handled from before nginx starts, so a stop during start-up never orphans it.
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    follower?.stop();
    consul.close();
    applier?.stop();
    // An open event stream would hold nginx's graceful stop until worker_shutdown_timeout.
    evidence.close();
    const exit = await nginx.stop();
    await statusServer.close();
    await relay?.close();
    // A temp dir we made ourselves is ours to remove; a WORK_DIR the user named is left alone.
    if (config.workDir === undefined) await fs.rm(workDir, { recursive: true, force: true });
    logger.info('stopped', { nginxExit: exit });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // If this process dies some other way, do not leave an orphaned nginx holding the port.
  process.on('exit', () => {
    if (!stopping) void nginx.stop(0);
  });

  // The follower starts at once; its changes wait for the applier, which needs a running nginx.
  let pending: GatewayTable | undefined;
  let droppedKey = '';
  follower = followGateway({
    fetchCatalog: consul.catalog,
    fetchHealthState: consul.healthState,
    readService: consul.service,
    resolveNames: nameResolver(systemLookup()),
    logger,
    emptyGraceMs: config.emptyGraceMs,
    routeOwners: config.routeOwners,
    onConsul(view) {
      const dropped = droppedByService(view);
      status.recordConsulAnswer({ index: view.index, dropped, droppedRoutes: view.droppedRoutes });
      // Logged once per change, not on every answer.
      const key = JSON.stringify({ dropped: [...dropped].filter(([, d]) => d.length > 0), routes: view.droppedRoutes });
      if (key !== droppedKey && (view.droppedRoutes.length > 0 || [...dropped.values()].some((d) => d.length > 0)))
        logger.warn('Consul registrations left out of the routing table', {
          droppedRoutes: view.droppedRoutes,
          droppedInstances: Object.fromEntries([...dropped].filter(([, d]) => d.length > 0)),
        });
      droppedKey = key;
      evidence.consulAnswered(view);
    },
    onReachability: (reachable, lastError) => status.recordConsulReachability(reachable, lastError),
    onChange: (table) => (applier ? applier.request(table) : (pending = table)),
  });

  // The first config holds the routes and replicas Consul has now, so a balancer that replaces another on
  // its port serves from its first request; if Consul does not answer in time it starts with no route (a
  // JSON 404), and the follower fills the table in.
  const first = (await follower.firstTable(FIRST_ANSWER_MS)) ?? EMPTY_TABLE;
  // No `nginx -t` before the first start: it would listen on the public port for a moment and reset whoever
  // connects (seen as a request that met ECONNREFUSED right after a connect succeeded); nginx's own start
  // refuses a bad config with the same message, and the balancer then exits non-zero.
  await nginx.writeCandidate(renderNginxConfig(settings, first));
  await nginx.installCandidate();
  await nginx.start();
  applier = createApplier({
    target: nginx,
    renderText,
    initial: first,
    status,
    logger,
    onApplied: () => evidence.applied(),
  });
  logger.info('balancer started', {
    services: Object.fromEntries(first.services.map((s) => [s.name, s.upstreams])),
    listen: `${config.listenAddress}:${config.listenPort}`,
    // The files' paths only: the key's content is never logged.
    tls: config.tls ?? 'off: plain HTTP',
    admin: `${config.adminAddress}:${config.adminPort}`,
    adminLogin: adminAuth ? 'token required (ADMIN_TOKEN_FILE)' : 'off: open',
    reusePort: config.reusePort,
    connLimitPerClient: config.connLimitPerClient,
    rateLimitPerClient: config.rateLimitPerClient,
    rateBurstPerClient: config.rateBurstPerClient,
    streamPaths: config.streamPaths.map(routeText),
    streamLimitPerClient: config.streamLimitPerClient,
    routeOwners: config.routeOwners
      ? Object.fromEntries([...config.routeOwners].map(([name, routes]) => [name, routes.map(routeText)]))
      : 'unset: tags decide',
    consul: config.consul.url,
    workDir,
    emptyGraceMs: config.emptyGraceMs,
  });

  if (pending) applier.request(pending);

  const exit = await nginx.exited();
  if (!stopping) {
    logger.error('nginx exited unexpectedly; exiting so the container restarts', { code: exit.code, signal: exit.signal });
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  logger.error('balancer failed', { error: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
