// The log collector's real configuration (collector/syslog-ng.conf, the same file the image copies)
// in a real syslog-ng: first as a plain process on a loopback port fed the way Docker's syslog driver
// feeds it, with its retention script (collector/prune.sh) run over what it wrote, and with the VMs' TLS
// listener (collector/source-tls.conf) and certificates made by infra/consul-tls.sh; then, when a Docker
// engine answers, as the image the program builds, run as declared (hardened), fed by the daemon's own
// log driver with the log options the program declares.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { freePort } from '../../harness/ports';
import { startProcess, stopAll, waitFor } from '../../harness/processes';
import { REPO_ROOT, recordStack } from '../helpers/record-stack';
import { docker, run as runCommand } from '../helpers/docker';
import { planContainer } from '../../harness/plugins/docker/plans';
import { BASE_IMAGE, ensureOfflineImages } from '../helpers/images';
import { COLLECTOR_TLS_FILES } from '../../infra/syslog-tls';
import { stackTls } from '../helpers/stack-tls';

const CONFIG_FILE = path.join(REPO_ROOT, 'collector', 'syslog-ng.conf');
/** The listener syslog-ng.conf includes: plain TCP and UDP (one host), or TLS only (VMs). */
const TCP_SOURCE = path.join(REPO_ROOT, 'collector', 'source-tcp.conf');
const TLS_SOURCE = path.join(REPO_ROOT, 'collector', 'source-tls.conf');
const PRUNE_SCRIPT = path.join(REPO_ROOT, 'collector', 'prune.sh');
const DAY_DIR = /^\d{4}-\d\d-\d\d$/;

/** A UTC day (YYYY-MM-DD) `days` before now: the image and these tests run syslog-ng and prune.sh with TZ=UTC. */
const utcDay = (daysAgo = 0) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);

/** The one day directory syslog-ng wrote (the day it received the lines; a test run may cross midnight). */
function writtenDay(logDir: string, before: string): string {
  const days = fs.readdirSync(logDir).filter((name) => DAY_DIR.test(name) && name >= before);
  if (days.length !== 1) throw new Error(`expected one day directory from ${before} on in ${logDir}, found ${days.join(', ')}`);
  return days[0];
}

test.after.always(stopAll);

/** The inputs of a declared docker.Container this test runs by hand (the resolved values of its args). */
interface DeclaredContainer {
  [input: string]: unknown;
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

/**
 * The collector's syslog-ng (collector/syslog-ng.conf) in the foreground, its state files in `dir`, stopped when
 * the test ends; resolves once it accepts connections.
 */
async function startSyslogNg(t: ExecutionContext, dir: string, env: NodeJS.ProcessEnv) {
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
    env,
  );
  t.teardown(() => syslogNg.stop());
  await waitFor('syslog-ng to accept connections', () => syslogNg.output().includes('Accepting connections'), 10_000);
  return syslogNg;
}

const readLines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('syslog-ng with the collector config keeps one file per container and a combined file, in a directory per day', async (t) => {
  t.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-collector-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Two levels down, so that a tag's `../../` would land inside `dir`, where the listing below sees it.
  const logDir = path.join(dir, 'stack', 'logs');
  const port = await freePort();

  await startSyslogNg(t, dir, {
    COLLECTOR_SOURCE: TCP_SOURCE,
    COLLECTOR_LISTEN: '127.0.0.1',
    COLLECTOR_PORT: String(port),
    COLLECTOR_LOG_DIR: logDir,
    TZ: 'UTC',
  });
  const firstDay = utcDay();

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

  // all.log in the log directory is a link to today's combined file, so `tail -F all.log` follows the days.
  const all = path.join(logDir, 'all.log');
  await waitFor('every message in all.log', () => readLines(all).length >= 8, 10_000);
  const day = writtenDay(logDir, firstDay);
  t.is(fs.readlinkSync(all), path.join(logDir, day, 'all.log'));

  const body = (file: string) => readLines(path.join(logDir, day, file)).map((line) => line.replace(/^\S+ /, ''));
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
  t.deepEqual(
    fs.readdirSync(path.join(logDir, day)).sort(),
    ['all.log', `${b}.log`, `${a}.log`, 'cnp-t-udp.log', 'cnp_t_slashed.log'].sort(),
  );
  t.deepEqual(fs.readdirSync(logDir).sort(), ['all.log', day].sort());
  // Nothing was written outside the log directory, where a `../../` would have landed.
  t.deepEqual(fs.readdirSync(dir).sort(), ['stack', 'syslog-ng.ctl', 'syslog-ng.persist', 'syslog-ng.pid']);
  t.deepEqual(fs.readdirSync(path.join(dir, 'stack')), ['logs']);
});

/** One line as Docker's syslog driver writes it over tcp+tls with syslog-format=rfc5424: its length first (RFC 5425). */
const octetCounted = (line: string) => `${Buffer.byteLength(line)} ${line}`;

/** Opens a connection, writes `text` once it is up (TLS: once the handshake is done) and resolves when it closes, with any error ('' if none). */
function sendAndClose(connect: () => net.Socket, event: 'connect' | 'secureConnect', text: string): Promise<string> {
  return new Promise((resolve) => {
    let error = '';
    const socket = connect();
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.on(event, () => socket.end(text));
    socket.on('error', (e) => (error ||= e.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(error);
    });
  });
}

test("syslog-ng with the VMs' TLS listener files the lines of a client with a certificate of the stack's CA and refuses any other, and plain text", async (t) => {
  t.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-collector-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // As the stack makes them: its CA, the collector's server certificate for its address, a daemon's client
  // certificate; and a CA of someone else's with a client certificate of its own.
  const ca = stackTls('ca');
  const signed = (signer: { cert: string; key: string }, cn: string, eku: string) =>
    stackTls('agent', { CA_CERT: signer.cert, CA_KEY: signer.key, CN: cn, SANS: 'IP:127.0.0.1', EKU: eku });
  const collector = signed(ca, 'collector', 'serverAuth');
  const client = signed(ca, 'vm1', 'clientAuth');
  const other = stackTls('ca', { CN: 'another CA' });
  const stranger = signed(other, 'vm1', 'clientAuth');
  fs.writeFileSync(path.join(dir, COLLECTOR_TLS_FILES.ca), ca.cert);
  fs.writeFileSync(path.join(dir, COLLECTOR_TLS_FILES.cert), collector.cert);
  fs.writeFileSync(path.join(dir, COLLECTOR_TLS_FILES.key), collector.key, { mode: 0o600 });

  const logDir = path.join(dir, 'logs');
  const port = await freePort();
  const syslogNg = await startSyslogNg(t, dir, {
    COLLECTOR_SOURCE: TLS_SOURCE,
    COLLECTOR_TLS_DIR: dir,
    COLLECTOR_LISTEN: '127.0.0.1',
    COLLECTOR_PORT: String(port),
    COLLECTOR_LOG_DIR: logDir,
    TZ: 'UTC',
  });

  // A client verifying the collector as Docker's driver does (Go's tls.Dial to an IP address: the certificate
  // must chain to the CA given and name that address), with the stack's client certificate.
  const tlsSend = (text: string, own?: { cert: string; key: string }) =>
    sendAndClose(() => tls.connect({ host: '127.0.0.1', port, ca: ca.cert, ...(own ?? {}) }), 'secureConnect', text);
  t.is(await tlsSend(octetCounted(dockerLine('vm1.cnp-t-consul', 'stdout', 'with the stack cert')), client), '');
  // Refused, each on its own connection: no client certificate, one of another CA, and plain text.
  const refused = ['no certificate', 'another CA', 'plain text'];
  await tlsSend(octetCounted(dockerLine('vm1.cnp-t-forged', 'stdout', refused[0])));
  await tlsSend(octetCounted(dockerLine('vm1.cnp-t-forged', 'stdout', refused[1])), stranger);
  await sendAndClose(() => net.connect({ host: '127.0.0.1', port }), 'connect', dockerLine('vm1.cnp-t-forged', 'stdout', refused[2]));
  await sendAndClose(
    () => net.connect({ host: '127.0.0.1', port }),
    'connect',
    octetCounted(dockerLine('vm1.cnp-t-forged', 'stdout', refused[2])),
  );
  // The collector's own certificate is checked too: a client that trusts only another CA does not go on.
  const untrusted = await sendAndClose(
    () => tls.connect({ host: '127.0.0.1', port, ca: other.cert, ...client }),
    'secureConnect',
    octetCounted(dockerLine('vm1.cnp-t-consul', 'stdout', 'to an untrusted server')),
  );
  t.regex(untrusted, /self[- ]signed|unable to verify|unable to get local issuer/i);

  const all = path.join(logDir, 'all.log');
  await waitFor('the accepted line in all.log', () => readLines(all).length >= 1, 10_000);
  await waitFor(
    'syslog-ng to log each refusal',
    () =>
      /peer did not return a certificate/.test(syslogNg.output()) &&
      /certificate verify failed|unknown ca|bad certificate/i.test(syslogNg.output()),
    10_000,
  );
  await new Promise((r) => setTimeout(r, 500));
  const lines = readLines(all).map((line) => line.replace(/^\S+ /, ''));
  t.deepEqual(lines, ['vm1.cnp-t-consul with the stack cert']);
  t.false(fs.readdirSync(path.join(logDir, writtenDay(logDir, utcDay(1)))).some((f) => f.includes('forged')));
  t.log(
    syslogNg
      .output()
      .split('\n')
      .filter((l) => /SSL error/.test(l))
      .map((l) => l.replace(/, location=.*$/, ''))
      .join('\n'),
  );
});

test('prune.sh deletes past days older than COLLECTOR_KEEP_DAYS, then the oldest past days while over COLLECTOR_MAX_MB, never today', async (t) => {
  t.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-prune-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const logDir = path.join(dir, 'stack');
  const port = await freePort();
  await startSyslogNg(t, dir, {
    COLLECTOR_SOURCE: TCP_SOURCE,
    COLLECTOR_LISTEN: '127.0.0.1',
    COLLECTOR_PORT: String(port),
    COLLECTOR_LOG_DIR: logDir,
    TZ: 'UTC',
  });
  const firstDay = utcDay();
  await sendTcp(port, dockerLine('cnp-t-replica-1', 'stdout', 'today'));
  await waitFor('today in all.log', () => readLines(path.join(logDir, 'all.log')).length >= 1, 10_000);
  const today = writtenDay(logDir, firstDay);

  // Past days as earlier runs left them: two beyond 7 days, a 3 MB one 3 days ago, a small one yesterday;
  // and 1 MB more today, which is never deleted, whatever the budget.
  const put = (day: string, file: string, bytes: number) => {
    fs.mkdirSync(path.join(logDir, day), { recursive: true });
    fs.writeFileSync(path.join(logDir, day, file), Buffer.alloc(bytes, 'x'));
  };
  put('2000-01-01', 'all.log', 10);
  put(utcDay(8), 'all.log', 10);
  put(utcDay(3), 'all.log', 3 * 1024 * 1024);
  put(utcDay(1), 'all.log', 10);
  put(today, 'bulk.log', 1024 * 1024);
  // Not a day directory: never touched.
  put('notes', 'keep.txt', 10);

  const prune = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('sh', [PRUNE_SCRIPT], { env: { ...process.env, TZ: 'UTC', COLLECTOR_LOG_DIR: logDir, ...env } });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
  const days = () =>
    fs
      .readdirSync(logDir)
      .filter((name) => DAY_DIR.test(name))
      .sort();

  // Age first: 7 days kept, a budget far above what is there.
  const byAge = await prune({ COLLECTOR_KEEP_DAYS: '7', COLLECTOR_MAX_MB: '1000' });
  t.is(byAge.code, 0, byAge.stderr);
  t.deepEqual(days(), [utcDay(3), utcDay(1), today].sort());
  t.regex(byAge.stderr, /deleting .*2000-01-01 \(older than 7 days\)/);

  // Then size: with 4 MB allowed, the 3 MB day goes (oldest first) and the directory is within budget.
  const bySize = await prune({ COLLECTOR_KEEP_DAYS: '7', COLLECTOR_MAX_MB: '4' });
  t.is(bySize.code, 0, bySize.stderr);
  t.deepEqual(days(), [utcDay(1), today].sort());
  t.regex(bySize.stderr, new RegExp(`deleting .*${utcDay(3)} \\(.* holds more than 4 MB\\)`));

  // A budget today alone exceeds: every past day goes, today stays (syslog-ng is writing it).
  const tight = await prune({ COLLECTOR_KEEP_DAYS: '7', COLLECTOR_MAX_MB: '0' });
  t.is(tight.code, 0, tight.stderr);
  t.deepEqual(days(), [today]);
  t.true(fs.existsSync(path.join(logDir, 'notes', 'keep.txt')));
  // syslog-ng keeps writing after a prune.
  await sendTcp(port, dockerLine('cnp-t-replica-1', 'stdout', 'after prune'));
  await waitFor('the line after the prune', () => readLines(path.join(logDir, today, 'cnp-t-replica-1.log')).length === 2, 10_000);

  const bad = await prune({ COLLECTOR_KEEP_DAYS: 'seven' });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /COLLECTOR_KEEP_DAYS=seven and COLLECTOR_MAX_MB=1024 must be whole numbers/);
});

// Every Docker call is asynchronous: a synchronous one (spawnSync) blocks this whole ava process, the
// other test's timers included, for as long as it runs; a cold image build (minutes) then made the
// syslog-ng test above time out on a fresh machine although it had long finished its work.
test("the collector image receives a container's stdout and stderr through Docker's syslog driver with the program's log options", async (t) => {
  // A cold machine: the offline base images (ensureOfflineImages, up to 600 s) and then this image's build.
  t.timeout(900_000);
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

  // The collector exactly as declared (the docker stand-in's translation of every input: its user, the read-only
  // root with tmpfs, no capability, no-new-privileges, limits, the port on loopback, its health check),
  // on a fresh named volume and the test's image; the stack network is the one thing left out.
  await docker(['volume', 'create', '--label', testLabel, volume.volumeName]);
  const plan = planContainer('collector-container', { ...collector, networksAdvanced: undefined }, () => image);
  await docker(plan.createArgs);
  t.deepEqual(
    collector.ports.map((p) => p.ip),
    ['127.0.0.1'],
    'the syslog port is published on loopback only',
  );
  await docker(['start', collector.name]);
  const healthy = async () => (await docker(['inspect', '-f', '{{.State.Health.Status}}', collector.name])).trim() === 'healthy';
  await waitFor('the collector to be healthy', healthy, 60_000, 250);

  // Hardened and still working: unprivileged, nothing writable outside its volume and tmpfs mounts.
  t.is((await docker(['exec', collector.name, 'id', '-u'])).trim(), '10001');
  await t.throwsAsync(docker(['exec', collector.name, 'touch', '/etc/written']), { message: /Read-only file system/ });
  t.regex(await docker(['exec', collector.name, 'grep', '-E', '^(CapEff|NoNewPrivs)', '/proc/1/status']), /CapEff:\s+0+\nNoNewPrivs:\s+1/);

  // Retention inside the container, without cron: a past day older than COLLECTOR_KEEP_DAYS is gone
  // once the collector (re)starts, and a recent one stays.
  await docker(['exec', collector.name, 'mkdir', '-p', '/var/log/stack/2000-01-01', `/var/log/stack/${utcDay(1)}`]);
  await docker(['restart', '-t', '5', collector.name]);
  await waitFor('the collector to be healthy again', healthy, 60_000, 250);
  const listing = async () => (await docker(['exec', collector.name, 'ls', '/var/log/stack'])).split('\n').filter(Boolean);
  await waitFor('the old day pruned', async () => !(await listing()).includes('2000-01-01'), 10_000, 200);
  t.true((await listing()).includes(utcDay(1)));
  t.regex(
    await runCommand('sh', ['-c', `docker logs ${collector.name} 2>&1`]),
    /prune: deleting \/var\/log\/stack\/2000-01-01 \(older than 7 days\)/,
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

  // Today's files (the day directory syslog-ng names; `*` also finds them if the test crosses midnight).
  const catLog = (file: string) => docker(['exec', collector.name, 'sh', '-c', `cat /var/log/stack/*/${file}`]).catch(() => '');
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
