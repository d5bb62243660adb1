// The log collector's real configuration (collector/syslog-ng.conf, the same file the image copies)
// in a real syslog-ng: first as a plain process on a loopback port fed the way Docker's syslog driver
// feeds it, then, when a Docker engine answers, as the image the program builds, fed by the daemon's
// own log driver with the log options the program declares.
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freePort } from '../../harness/ports';
import { startProcess, stopAll, waitFor } from '../../harness/processes';
import { REPO_ROOT, recordStack } from '../helpers/record-stack';
import { docker } from '../system/docker';
import { BASE_IMAGE, ensureOfflineImages } from '../system/images';

const CONFIG_FILE = path.join(REPO_ROOT, 'collector', 'syslog-ng.conf');

test.after.always(stopAll);

/** The inputs of a declared docker.Container this test runs by hand (the resolved values of its args). */
interface DeclaredContainer {
  name: string;
  volumes: { volumeName: string; containerPath: string }[];
  ports: { ip: string; external: number; internal: number; protocol: string }[];
  healthcheck: { tests: string[] };
  logDriver: string;
  logOpts: Record<string, string>;
}

/** The inputs of a declared docker.Image this test builds by hand. */
interface DeclaredImage {
  build: { args: { BASE_IMAGE: string }; dockerfile: string; context: string };
}

/** One line as Docker's syslog driver writes it over plain TCP with syslog-format=rfc5424. */
function dockerLine(tag: string, stream: 'stdout' | 'stderr', message: string): string {
  const priority = stream === 'stdout' ? 30 : 27; // daemon.info / daemon.err, as the driver uses
  return `<${priority}>1 ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} docker-host ${tag} 4242 ${tag} - ${message}\n`;
}

function sendTcp(port: number, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(text));
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

function sendUdp(port: number, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.send(text, port, '127.0.0.1', (error) => {
      socket.close();
      if (error) reject(error);
      else resolve();
    });
  });
}

const readLines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('syslog-ng with the collector config keeps one file per container and a combined file', async (t) => {
  t.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-collector-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Two levels down, so that a tag's `../../` would land inside `dir`, where the listing below sees it.
  const logDir = path.join(dir, 'stack', 'logs');
  const port = await freePort();

  const syslogNg = startProcess(
    'syslog-ng',
    [
      '--foreground',
      '--stderr',
      '--no-caps',
      `--cfgfile=${CONFIG_FILE}`,
      `--persist-file=${path.join(dir, 'syslog-ng.persist')}`,
      `--pidfile=${path.join(dir, 'syslog-ng.pid')}`,
      `--control=${path.join(dir, 'syslog-ng.ctl')}`,
    ],
    { COLLECTOR_LISTEN: '127.0.0.1', COLLECTOR_PORT: String(port), COLLECTOR_LOG_DIR: logDir },
  );
  t.teardown(() => syslogNg.stop());
  await waitFor('syslog-ng to accept connections', () => syslogNg.output().includes('Accepting connections'), 10_000);

  const a = 'cnp-t-replica-1';
  const b = 'cnp-t-balancer';
  // Two containers, each with a connection of its own (as the daemon opens one per container).
  await Promise.all([
    sendTcp(port, dockerLine(a, 'stdout', 'a first') + dockerLine(a, 'stderr', 'a oops') + dockerLine(a, 'stdout', 'a third')),
    sendTcp(port, dockerLine(b, 'stdout', 'b listening on 8080') + dockerLine(b, 'stderr', 'b warning')),
  ]);
  await sendUdp(port, dockerLine('cnp-t-udp', 'stdout', 'over udp').trimEnd());
  // A tag that tries to leave the directory.
  await sendTcp(port, dockerLine('../../escaped', 'stdout', 'should stay inside'));
  await sendTcp(port, dockerLine('cnp/t/slashed', 'stdout', 'slashed tag'));

  const all = path.join(logDir, 'all.log');
  await waitFor('every message in all.log', () => readLines(all).length >= 8, 10_000);

  const body = (file: string) => readLines(path.join(logDir, file)).map((line) => line.replace(/^\S+ /, ''));
  t.deepEqual(body(`${a}.log`), ['a first', 'a oops', 'a third']);
  t.deepEqual(body(`${b}.log`), ['b listening on 8080', 'b warning']);
  t.deepEqual(body('cnp-t-udp.log'), ['over udp']);
  const combined = body('all.log');
  for (const line of [`${a} a first`, `${a} a oops`, `${a} a third`, `${b} b listening on 8080`, `${b} b warning`, 'cnp-t-udp over udp']) {
    t.true(combined.includes(line), `all.log has "${line}"`);
  }
  // Each line keeps the sender's timestamp (ISO 8601) first.
  for (const line of readLines(all)) t.regex(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d /);
  t.true(combined.some((line) => line.endsWith('should stay inside')));
  // A tag with a slash gets a flat file in the log directory, not a subdirectory (sanitize); syslog-ng
  // itself refuses the escaping tag's file ("spurious path"), so that line is in all.log only.
  t.deepEqual(body('cnp_t_slashed.log'), ['slashed tag']);
  t.deepEqual(fs.readdirSync(logDir).sort(), ['all.log', `${b}.log`, `${a}.log`, 'cnp-t-udp.log', 'cnp_t_slashed.log'].sort());
  // Nothing was written outside the log directory, where a `../../` would have landed.
  t.deepEqual(fs.readdirSync(dir).sort(), ['stack', 'syslog-ng.ctl', 'syslog-ng.persist', 'syslog-ng.pid']);
  t.deepEqual(fs.readdirSync(path.join(dir, 'stack')), ['logs']);
});

// Every Docker call is asynchronous: a synchronous one (spawnSync) blocks this whole ava process, the
// other test's timers included, for as long as it runs; a cold image build (minutes) then made the
// syslog-ng test above time out on a fresh machine although it had long finished its work.
test("the collector image receives a container's stdout and stderr through Docker's syslog driver with the program's log options", async (t) => {
  t.timeout(600_000);
  // No engine is a failure that names what is missing, never a silent skip.
  await docker(['info', '--format', '{{.ServerVersion}}']).catch((error) => {
    throw new Error(`this test needs a running Docker engine (scripts/provision.sh starts one): ${error}`);
  });
  // The offline base the system test uses (cached; built once by scripts/images.sh under a lock).
  await ensureOfflineImages();

  const run = crypto.randomBytes(3).toString('hex');
  const stack = `colltest${run}`;
  const testLabel = `io.consul-nginx-pulumi.test=collector-${run}`;
  const collectorPort = await freePort();
  const record = await recordStack({ stack, config: { collectorPort, baseImage: BASE_IMAGE } });
  const find = <T>(name: string) => record.resources.find((r) => r.name === name)!.inputs as T;
  const collector = find<DeclaredContainer>('collector-container');
  const imageInputs = find<DeclaredImage>('collector-image');
  const replica = find<DeclaredContainer>('replicas-1');

  const image = `cnp-collector-test:${run}`;
  const volume = collector.volumes[0];
  t.teardown(async () => {
    await docker(['rm', '-f', collector.name, replica.name]).catch(() => {});
    await docker(['volume', 'rm', '-f', volume.volumeName]).catch(() => {});
    await docker(['image', 'rm', '-f', image]).catch(() => {});
  });

  await docker(
    [
      'build',
      '-q',
      '--label',
      testLabel,
      '-t',
      image,
      '--build-arg',
      `BASE_IMAGE=${imageInputs.build.args.BASE_IMAGE}`,
      '-f',
      imageInputs.build.dockerfile,
      imageInputs.build.context,
    ],
    { timeoutMs: 300_000 },
  );

  // The collector as declared: a fresh named volume for its files, the published port on the bind
  // address, its health check.
  await docker(['volume', 'create', '--label', testLabel, volume.volumeName]);
  const port = collector.ports[0];
  const health = collector.healthcheck.tests;
  await docker([
    'run',
    '-d',
    '--name',
    collector.name,
    '--label',
    testLabel,
    '-v',
    `${volume.volumeName}:${volume.containerPath}`,
    '-p',
    `${port.ip}:${port.external}:${port.internal}/${port.protocol}`,
    '--health-cmd',
    health.slice(1).join(' '),
    '--health-interval',
    '1s',
    image,
  ]);
  await waitFor(
    'the collector to be healthy',
    async () => (await docker(['inspect', '-f', '{{.State.Health.Status}}', collector.name])).trim() === 'healthy',
    60_000,
    250,
  );

  // A throwaway container logging with exactly the replica's declared log driver and options.
  const logOpts = Object.entries(replica.logOpts).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]);
  await docker([
    'run',
    '--name',
    replica.name,
    '--label',
    testLabel,
    '--log-driver',
    replica.logDriver,
    ...logOpts,
    'cnp-base:bookworm',
    'sh',
    '-c',
    `echo out-${run}; echo err-${run} >&2`,
  ]);

  const catLog = (file: string) => docker(['exec', collector.name, 'cat', `/var/log/stack/${file}`]).catch(() => '');
  await waitFor('both lines in the container file', async () => (await catLog(`${replica.name}.log`)).includes(`err-${run}`), 10_000, 200);
  const own = await catLog(`${replica.name}.log`);
  t.true(own.includes(`out-${run}`));
  t.true(own.includes(`err-${run}`));
  const all = await catLog('all.log');
  t.true(all.includes(`${replica.name} out-${run}`));
  t.true(all.includes(`${replica.name} err-${run}`));
  // `docker logs` keeps working next to the syslog driver (the daemon's local cache); it prints the
  // container's stdout on its stdout.
  t.true((await docker(['logs', replica.name])).includes(`out-${run}`));
});
