// The README's quick start, run as a user runs it, through the real Pulumi CLI (built by `npm run tools`),
// its Node.js language host and scripts/stack.sh, in a scratch copy of the project: up, evidence, one more
// replica under a steady loop, HTTPS at the edge (a given certificate, then the stack's own, renewed) under
// steady loops, destroy. The offline image settings and free ports are set first with the
// same `npm run pulumi -- config set` the README documents. The engine is real; the docker and command
// plugins are the project's stand-ins (harness/plugins/), which this machine cannot download.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { describeFailures, startSteadyLoopProcess, type SteadyLoop } from '../../harness/load';
import { CA_FILE_VARIABLE, makeTestCertificates } from '../../harness/tls';
import { freePorts } from '../../harness/ports';
import { pulumiCliEnv, requireBuiltCli } from '../helpers/pulumi-cli';
import { scratchCopy, type ScratchCopy } from '../helpers/scratch-copy';
import { holdSystemLock, SYSTEM_LOCK_WAIT_MS } from '../helpers/system-lock';
import { docker, inspect } from '../helpers/docker';
import { compareListings, listDocker, type DockerListing } from '../helpers/docker-listing';
import { BASE_IMAGE, CONSUL_IMAGE, NATS_IMAGE, ensureOfflineImages } from '../helpers/images';

const STACK_LABEL = 'io.consul-nginx-pulumi.stack=dev';
let copy: ScratchCopy | undefined;
let before: DockerListing | undefined;
let env: NodeJS.ProcessEnv = {};
const loops: SteadyLoop[] = [];
/** Other system test files run before or after this one, never beside it (test/helpers/system-lock.ts). */
let releaseSystemLock: (() => void) | undefined;

/** Runs one README command line with bash in the copy; resolves with its output, rejects with it on failure. */
function readmeCommand(line: string, timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', line], { cwd: copy!.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`\`${line}\` exited ${code}:\n${output.slice(-4000)}`));
    });
  });
}

/** The stack's containers: name → id. */
async function stackContainers(): Promise<Map<string, string>> {
  const listed = await docker(['ps', '-a', '--filter', `label=${STACK_LABEL}`, '--format', '{{.Names}} {{.ID}}']);
  return new Map(
    listed
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ') as [string, string]),
  );
}

/** The evidence command's table: requests per instance, and the failed count. */
function evidenceCounts(output: string): { instances: Map<string, number>; failed: number } {
  const instances = new Map<string, number>();
  let failed = -1;
  for (const match of output.matchAll(/^(\S+)\s+(\d+)\s+[\d.]+%$/gm)) {
    if (match[1] === '(failed)') failed = Number(match[2]);
    else if (match[1] !== 'instance') instances.set(match[1], Number(match[2]));
  }
  return { instances, failed };
}

test.before(async (t) => {
  t.timeout(SYSTEM_LOCK_WAIT_MS + 120_000);
  releaseSystemLock = await holdSystemLock();
  requireBuiltCli();
  await ensureOfflineImages();
  const existing = await docker(['ps', '-a', '--filter', `label=${STACK_LABEL}`, '--format', '{{.Names}}']);
  if (existing.trim())
    throw new Error(`a dev stack already runs on this engine (${existing.trim()}); the quick-start test would share its names`);
  before = await listDocker();
  copy = scratchCopy('cnp-quick-start-');
  env = { ...pulumiCliEnv(copy.dir), HOME: copy.dir };
});

test.after.always(async () => {
  await Promise.allSettled(loops.map((loop) => loop.stop()));
  if (copy) {
    await readmeCommand('npm run destroy -- --yes', 300_000).catch((error: Error) => console.error(error.message));
    // Whatever a failed destroy left of this test's stack, and only what was not there before it began.
    const left = await docker(['ps', '-aq', '--filter', `label=${STACK_LABEL}`]);
    const known = new Set(before?.containers.map((entry) => entry.split(' ')[0]) ?? []);
    const ours = left.split('\n').filter((id) => id && !known.has(id));
    if (ours.length > 0) await docker(['rm', '-f', ...ours]).catch(() => {});
    copy.remove();
  }
});
// After the clean-up above (ava runs these hooks in order), so the next system test file starts on a quiet engine.
test.after.always(() => releaseSystemLock?.());

/** The serial number of the certificate the HTTPS port serves, verified against `ca`. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', timeout: 5000 }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('timeout', () => socket.destroy(new Error('no TLS handshake within 5 s')));
    socket.on('error', reject);
  });
}

test('the quick start through the real CLI: up, evidence, replicas 3 with no failed request, HTTPS on and renewed with none, destroy leaves nothing', async (t) => {
  t.timeout(25 * 60_000);
  const [balancerPort, balancerHttpsPort, balancerAdminPort, consulUiPort, collectorPort] = await freePorts(5);
  const offline = `npm run pulumi -- config set baseImage ${BASE_IMAGE} && npm run pulumi -- config set consulImage ${CONSUL_IMAGE} && npm run pulumi -- config set natsImage ${NATS_IMAGE}`;
  t.true(
    fs.readFileSync(path.join(copy!.dir, 'infra', 'README.md'), 'utf8').includes(offline),
    'the offline settings are the ones infra/README.md documents',
  );
  await readmeCommand(offline);
  for (const [key, port] of Object.entries({ balancerPort, balancerHttpsPort, balancerAdminPort, consulUiPort, collectorPort })) {
    await readmeCommand(`npm run pulumi -- config set ${key} ${port}`);
  }

  let started = Date.now();
  await readmeCommand('npm run up -- --yes');
  t.log(`npm run up: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const first = evidenceCounts(await readmeCommand('npm run evidence'));
  t.is(first.failed, 0);
  t.is(first.instances.size, 2, 'Pulumi.dev.yaml says 2 replicas');

  const containersBefore = await stackContainers();
  const loop = startSteadyLoopProcess(`http://127.0.0.1:${balancerPort}/`, { maxMs: 600_000 });
  loops.push(loop);
  started = Date.now();
  await readmeCommand('npm run pulumi -- config set replicas 3 && npm run up -- --yes');
  t.log(`replicas 3, npm run up: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 1500));
  const report = await loop.stop();
  // One replica more, and nothing else touched: every container of the 2-replica stack keeps its id.
  const containersAfter = await stackContainers();
  t.deepEqual(
    [...containersBefore].filter(([name, id]) => containersAfter.get(name) !== id),
    [],
    'no container of the stack was replaced or removed',
  );
  t.deepEqual(
    [...containersAfter.keys()].filter((name) => !containersBefore.has(name)).map((name) => name.replace(/-[0-9a-f]{12}$/, '')),
    ['cnp-dev-replica-3'],
  );
  t.is(report.failures.length, 0, describeFailures(report));
  t.true(report.total > 0);
  const after = evidenceCounts(await readmeCommand('npm run evidence'));
  t.is(after.failed, 0);
  t.is(after.instances.size, 3, [...after.instances.keys()].join(', '));
  for (const [instance, count] of after.instances) t.true(count > 0, `${instance} served requests`);

  // HTTPS at the edge with the operator's certificate: balancerPort then redirects, so a client that follows
  // redirects (a browser, curl -L) fails no request while the balancer hands over to an HTTPS one.
  const given = await makeTestCertificates();
  t.teardown(() => given.remove());
  process.env[CA_FILE_VARIABLE] = given.caFile;
  const httpsUrl = `https://127.0.0.1:${balancerHttpsPort}/`;
  const toHttps = startSteadyLoopProcess(`http://127.0.0.1:${balancerPort}/`, { maxMs: 600_000, followRedirect: true, keepResults: true });
  loops.push(toHttps);
  started = Date.now();
  await readmeCommand(
    `npm run pulumi -- config set publicTls on && npm run pulumi -- config set publicTlsCertificate < ${given.certFile} && ` +
      `npm run pulumi -- config set --secret publicTlsKey < ${given.keyFile} && npm run up -- --yes`,
  );
  t.log(`publicTls on with a given certificate, npm run up: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 1500));
  const toHttpsReport = await toHttps.stop();
  t.is(toHttpsReport.failures.length, 0, describeFailures(toHttpsReport));
  const redirected = toHttpsReport.results!.filter((r) => r.location?.startsWith(httpsUrl)).length;
  t.true(redirected > 0, 'the plain port came to redirect to HTTPS');

  // Without one, the stack makes its own; its CA is an output, which npm run evidence trusts by itself.
  await readmeCommand(
    'npm run pulumi -- config rm publicTlsCertificate && npm run pulumi -- config rm publicTlsKey && npm run up -- --yes',
  );
  const ca = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
    await readmeCommand('npm run --silent pulumi -- stack output balancerCaCertificate'),
  )?.[0];
  t.truthy(ca, 'the stack output balancerCaCertificate holds the CA');
  const overHttps = evidenceCounts(await readmeCommand('npm run evidence'));
  t.is(overHttps.failed, 0);
  t.is(overHttps.instances.size, 3);

  // The renewal command: a new certificate, served after a hand-over that fails no HTTPS request.
  const caFile = path.join(copy!.dir, 'balancer-ca.pem');
  fs.writeFileSync(caFile, ca!);
  process.env[CA_FILE_VARIABLE] = caFile;
  const serialBefore = await servedSerial(balancerHttpsPort, ca!);
  const renewing = startSteadyLoopProcess(httpsUrl, { maxMs: 600_000 });
  loops.push(renewing);
  started = Date.now();
  await readmeCommand('npm run tls:renew -- --yes');
  t.log(`npm run tls:renew: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 1500));
  const renewReport = await renewing.stop();
  t.is(renewReport.failures.length, 0, describeFailures(renewReport));
  t.true(renewReport.total > 0);
  const serialAfter = await servedSerial(balancerHttpsPort, ca!);
  t.not(serialAfter, serialBefore, 'a new certificate, signed by the same CA');
  t.log(
    `plain -> HTTPS: ${toHttpsReport.total} requests following redirects (${redirected} redirected), 0 failed; ` +
      `renewal: ${renewReport.total} HTTPS requests, 0 failed; certificate ${serialBefore} -> ${serialAfter}`,
  );

  // Every volume the stack's containers mount, named or anonymous, to check their removal.
  const volumes = new Set<string>();
  for (const id of (await docker(['ps', '-aq', '--filter', `label=${STACK_LABEL}`])).split('\n').filter(Boolean)) {
    for (const mount of (await inspect('container', id))?.Mounts ?? []) if (mount.Type === 'volume') volumes.add(mount.Name);
  }
  t.true(volumes.size >= 3, "the stack mounts volumes (logs, Consul's data, the broker's stream)");
  await readmeCommand('npm run destroy -- --yes');
  // Other test files may use the engine meanwhile: any difference must not be the stack's.
  const left = compareListings(before!, await listDocker()).filter(
    (change) => change.entry.includes('cnp-dev-') || (change.kind === 'volumes' && volumes.has(change.entry)),
  );
  t.deepEqual(left, [], 'destroy leaves no container, network or volume of the stack');
});
