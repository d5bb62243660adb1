// The log collector's real configuration (collector/syslog-ng.conf, the same file the image copies)
// in a real syslog-ng: first as a plain process on a loopback port fed the way Docker's syslog driver
// feeds it, then, when a Docker engine answers, as the image the program builds, fed by the daemon's
// own log driver with the log options the program declares.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freePort } from '../helpers/ports';
import { startProcess, stopAll, waitFor } from '../helpers/processes';
import { REPO_ROOT, recordStack } from '../helpers/record-stack';

const CONFIG_FILE = path.join(REPO_ROOT, 'collector', 'syslog-ng.conf');

test.after.always(stopAll);

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

const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 300_000 });

// Needs a Docker engine. Without one the test fails naming it (scripts/provision.sh starts one): a skip
// would let the run pass with the image untested.
test(
  "the collector image receives a container's stdout and stderr through Docker's syslog driver with the program's log options",
  async (t) => {
    t.timeout(600_000);
    const info = docker('info', '--format', '{{.ServerVersion}}');
    if (info.status !== 0) {
      const why = info.error ? String(info.error) : (info.stderr || info.stdout).trim();
      t.fail(`needs a running Docker engine (\`docker info\` failed: ${why}); start one (scripts/provision.sh does) and run again`);
      return;
    }
    // The offline base the system test uses (cached; built once by scripts/images.sh under a lock).
    const images = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'images.sh')], { encoding: 'utf8', timeout: 600_000 });
    t.is(images.status, 0, images.stderr);

    const run = crypto.randomBytes(3).toString('hex');
    const stack = `colltest${run}`;
    const testLabel = `io.consul-nginx-pulumi.test=collector-${run}`;
    const collectorPort = await freePort();
    const record = await recordStack({ stack, config: { collectorPort, baseImage: 'cnp-base:bookworm' } });
    const find = (name: string) => record.resources.find((r) => r.name === name)!.inputs as Record<string, any>;
    const collector = find('collector-container');
    const imageInputs = find('collector-image');
    const replica = find('replicas-1');

    const image = `cnp-collector-test:${run}`;
    const volume = collector.volumes[0] as { volumeName: string; containerPath: string };
    const removeAll = () => {
      docker('rm', '-f', collector.name, replica.name);
      docker('volume', 'rm', '-f', volume.volumeName);
      docker('image', 'rm', '-f', image);
    };
    t.teardown(removeAll);

    const build = docker(
      'build', '-q', '--label', testLabel, '-t', image,
      '--build-arg', `BASE_IMAGE=${imageInputs.build.args.BASE_IMAGE}`,
      '-f', imageInputs.build.dockerfile, imageInputs.build.context,
    );
    t.is(build.status, 0, build.stderr);

    // The collector as declared: a fresh named volume for its files, the published port on the bind
    // address, its health check.
    t.is(docker('volume', 'create', '--label', testLabel, volume.volumeName).status, 0);
    const port = collector.ports[0];
    const health = collector.healthcheck.tests as string[];
    const started = docker(
      'run', '-d', '--name', collector.name, '--label', testLabel,
      '-v', `${volume.volumeName}:${volume.containerPath}`,
      '-p', `${port.ip}:${port.external}:${port.internal}/${port.protocol}`,
      '--health-cmd', health.slice(1).join(' '), '--health-interval', '1s',
      image,
    );
    t.is(started.status, 0, started.stderr);
    await waitFor(
      'the collector to be healthy',
      () => docker('inspect', '-f', '{{.State.Health.Status}}', collector.name).stdout.trim() === 'healthy',
      60_000,
      250,
    );

    // A throwaway container logging with exactly the replica's declared log driver and options.
    const logOpts = Object.entries(replica.logOpts as Record<string, string>).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]);
    const sender = docker(
      'run', '--name', replica.name, '--label', testLabel, '--log-driver', replica.logDriver, ...logOpts,
      'cnp-base:bookworm', 'sh', '-c', `echo out-${run}; echo err-${run} >&2`,
    );
    t.is(sender.status, 0, sender.stderr);

    const catLog = (file: string) => docker('exec', collector.name, 'cat', `/var/log/stack/${file}`).stdout;
    await waitFor('both lines in the container file', () => catLog(`${replica.name}.log`).includes(`err-${run}`), 10_000, 200);
    const own = catLog(`${replica.name}.log`);
    t.true(own.includes(`out-${run}`));
    t.true(own.includes(`err-${run}`));
    const all = catLog('all.log');
    t.true(all.includes(`${replica.name} out-${run}`));
    t.true(all.includes(`${replica.name} err-${run}`));
    // `docker logs` keeps working next to the syslog driver (the daemon's local cache).
    const logs = docker('logs', replica.name);
    t.true((logs.stdout + logs.stderr).includes(`out-${run}`), logs.stderr);
  },
);
