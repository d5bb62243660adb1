// scripts/stack.sh (npm run up / destroy): which Pulumi CLI it runs, and what it hands that CLI.
// Every run happens in a network namespace of its own (only a downed loopback), so nothing here can
// reach outside the machine, even if the script tried to download the CLI when it should not.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { REPO_ROOT } from '../helpers/record-stack';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'stack.sh');
/** What `npm run` puts first on PATH: the project's node_modules/.bin, holding the wrapper's `pulumi`. */
const PROJECT_BIN = path.join(REPO_ROOT, 'node_modules', '.bin');
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string; dependencies: Record<string, string> };
const WRAPPER_VERSION = readJson(path.join(REPO_ROOT, 'node_modules', 'pulumi', 'package.json')).version;
/** Unprivileged, a user namespace lets unshare make the network namespace. */
const UNSHARE_NET = process.getuid?.() === 0 ? ['--net'] : ['--map-root-user', '--net'];
/** Found on the test's own PATH: the script runs with a PATH of the test's making. */
const UNSHARE = spawnSync('bash', ['-c', 'command -v unshare'], { encoding: 'utf8' }).stdout.trim() || 'unshare';

interface Call {
  who: string;
  argv: string[];
  backend: string | null;
  passphrase: string | null;
  path: string;
}

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A PATH dir holding only the tools the script itself uses; no pulumi. */
function toolsDir(t: ExecutionContext): string {
  const dir = tempDir(t, 'cnp-tools-');
  for (const tool of ['bash', 'dirname', 'node', 'mkdir', 'mktemp', 'rm']) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (!found) throw new Error(`the test needs ${tool} on PATH`);
    fs.symlinkSync(found, path.join(dir, tool));
  }
  return dir;
}

/** Writes a `pulumi` stand-in at `file` that appends each call (arguments, environment) to `record`. */
function standIn(file: string, who: string, record: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const body = `#!${process.execPath}
const e = process.env;
require('fs').appendFileSync(${JSON.stringify(record)}, JSON.stringify({
  who: ${JSON.stringify(who)}, argv: process.argv.slice(2), backend: e.PULUMI_BACKEND_URL ?? null,
  passphrase: e.PULUMI_CONFIG_PASSPHRASE ?? null, path: e.PATH,
}) + '\\n');
`;
  fs.writeFileSync(file, body, { mode: 0o755 });
}

function calls(record: string): Call[] {
  if (!fs.existsSync(record)) return [];
  return fs
    .readFileSync(record, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Call);
}

/** Runs the script in a fresh network namespace with exactly `env` (no inherited PATH or HOME). */
function runStack(args: string[], env: Record<string, string>) {
  return spawnSync(UNSHARE, [...UNSHARE_NET, '--', 'bash', SCRIPT, ...args], { encoding: 'utf8', env, timeout: 30_000 });
}

interface Setup {
  home: string;
  pulumiHome: string;
  record: string;
  tools: string;
  env(extra: Record<string, string> & { PATH: string }): Record<string, string>;
}

function setup(t: ExecutionContext): Setup {
  const home = tempDir(t, 'cnp-stack-home-');
  const pulumiHome = path.join(home, 'pulumi-home');
  fs.mkdirSync(pulumiHome);
  const record = path.join(home, 'calls.jsonl');
  return {
    home,
    pulumiHome,
    record,
    tools: toolsDir(t),
    env: (extra) => ({ HOME: home, PULUMI_HOME: pulumiHome, TMPDIR: home, ...extra }),
  };
}

const cachedCli = (pulumiHome: string, version = WRAPPER_VERSION) => path.join(pulumiHome, 'versions', version, 'bin', 'pulumi');

test('the runs cannot leave the machine: the namespace has only a loopback interface', (t) => {
  const result = spawnSync(UNSHARE, [...UNSHARE_NET, '--', 'cat', '/proc/net/dev'], { encoding: 'utf8' });
  t.is(result.status, 0, `unshare ${UNSHARE_NET.join(' ')} is needed by these tests: ${result.stderr}`);
  const interfaces = result.stdout
    .split('\n')
    .slice(2)
    .filter(Boolean)
    .map((line) => line.split(':')[0].trim());
  t.deepEqual(interfaces, ['lo']);
});

test('the pinned npm wrapper `pulumi` is the one installed, exactly', (t) => {
  const pkg = readJson(path.join(REPO_ROOT, 'package.json'));
  t.regex(pkg.dependencies.pulumi, /^3\.\d+\.\d+$/);
  t.is(pkg.dependencies.pulumi, WRAPPER_VERSION);
});

for (const action of ['up', 'destroy']) {
  test(`a pulumi the user installed wins over the npm wrapper (${action})`, (t) => {
    const s = setup(t);
    const userBin = path.join(s.home, 'user-bin');
    standIn(path.join(userBin, 'pulumi'), 'user', s.record);
    // A CLI in the wrapper's cache too: the user's must still be the one run.
    standIn(cachedCli(s.pulumiHome), 'cache', s.record);
    const result = runStack([action, '--yes', '--skip-preview'], s.env({ PATH: [PROJECT_BIN, userBin, s.tools].join(':') }));
    t.is(result.status, 0, result.stderr);
    t.is(result.stderr, '');
    const made = calls(s.record);
    t.deepEqual(
      made.map((c) => [c.who, ...c.argv]),
      [
        ['user', 'stack', 'select', '--create', 'dev'],
        ['user', action, '--stack', 'dev', '--yes', '--skip-preview'],
      ],
    );
    for (const call of made) {
      t.is(call.backend, `file://${REPO_ROOT}/.pulumi`);
      t.is(call.passphrase, '');
    }
  });
}

test('npm run pulumi -- ARGS runs any pulumi command with the same CLI, backend and stack', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const result = runStack(['pulumi', 'config', 'set', 'replicas', '3'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
  t.is(result.status, 0, result.stderr);
  const made = calls(s.record);
  t.deepEqual(
    made.map((c) => [c.who, ...c.argv]),
    [
      ['cache', 'stack', 'select', '--create', 'dev'],
      ['cache', 'config', 'set', 'replicas', '3'],
    ],
  );
  for (const call of made) t.is(call.backend, `file://${REPO_ROOT}/.pulumi`);
});

test('npm run pulumi -- ARGS --stack NAME neither creates nor selects the dev stack', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const result = runStack(
    ['pulumi', 'stack', 'output', 'balancerUrl', '--stack', 'other'],
    s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }),
  );
  t.is(result.status, 0, result.stderr);
  t.deepEqual(
    calls(s.record).map((c) => [c.who, ...c.argv]),
    [['cache', 'stack', 'output', 'balancerUrl', '--stack', 'other']],
  );
});

test("the user's passphrase, or passphrase file, is kept", (t) => {
  const s = setup(t);
  const userBin = path.join(s.home, 'user-bin');
  standIn(path.join(userBin, 'pulumi'), 'user', s.record);
  const PATH = [userBin, s.tools].join(':');
  t.is(runStack(['up'], s.env({ PATH, PULUMI_CONFIG_PASSPHRASE: 'correct horse' })).status, 0);
  t.is(runStack(['up'], s.env({ PATH, PULUMI_CONFIG_PASSPHRASE_FILE: '/dev/null' })).status, 0);
  t.deepEqual(
    calls(s.record).map((c) => c.passphrase),
    ['correct horse', 'correct horse', null, null],
  );
});

test('with no pulumi on PATH the CLI the npm wrapper keeps for its version in PULUMI_HOME is run', (t) => {
  const s = setup(t);
  const cached = cachedCli(s.pulumiHome);
  standIn(cached, 'cache', s.record);
  const result = runStack(['up', '--yes'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
  t.is(result.status, 0, result.stderr);
  t.is(result.stderr, '', 'a cached CLI needs no download and no message');
  const made = calls(s.record);
  t.deepEqual(
    made.map((c) => [c.who, ...c.argv]),
    [
      ['cache', 'stack', 'select', '--create', 'dev'],
      ['cache', 'up', '--stack', 'dev', '--yes'],
    ],
  );
  for (const call of made) {
    t.is(call.backend, `file://${REPO_ROOT}/.pulumi`);
    t.is(call.passphrase, '');
    // As the wrapper's run.js does: the CLI's own folder first, so its language hosts are found.
    t.is(call.path.split(':')[0], path.dirname(cached));
  }
});

test("Ctrl-C reaches the wrapper's CLI itself: the run ends only once the CLI has finished cancelling", async (t) => {
  const s = setup(t);
  const cached = cachedCli(s.pulumiHome);
  fs.mkdirSync(path.dirname(cached), { recursive: true });
  // Like pulumi: `up` runs until SIGINT, then cancels gracefully, which takes a moment.
  fs.writeFileSync(
    cached,
    `#!${process.execPath}
const fs = require('fs');
const record = ${JSON.stringify(s.record)};
if (process.argv[2] !== 'up') process.exit(0);
process.on('SIGINT', () => setTimeout(() => { fs.appendFileSync(record, 'cancelled\\n'); process.exit(130); }, 500));
fs.appendFileSync(record, 'running\\n');
setInterval(() => {}, 1000);
`,
    { mode: 0o755 },
  );
  // Detached: a process group of its own, as the terminal's foreground job that Ctrl-C signals.
  const child = spawn(UNSHARE, [...UNSHARE_NET, '--', 'bash', SCRIPT, 'up'], {
    env: s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }),
    stdio: 'ignore',
    detached: true,
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  });
  const record = () => (fs.existsSync(s.record) ? fs.readFileSync(s.record, 'utf8') : '');
  for (const deadline = Date.now() + 20_000; !record().includes('running');) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the stand-in CLI did not start: ${record()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  process.kill(-child.pid!, 'SIGINT');
  const code = await exited;
  t.is(record(), 'running\ncancelled\n', 'the run ended before the CLI had finished cancelling');
  t.is(code, 130);
});

test('PULUMI_VERSION picks another cached CLI version, as the wrapper does', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'pinned', s.record);
  standIn(cachedCli(s.pulumiHome, '3.999.0'), 'override', s.record);
  const result = runStack(['destroy'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':'), PULUMI_VERSION: '3.999.0' }));
  t.is(result.status, 0, result.stderr);
  t.deepEqual(
    calls(s.record).map((c) => c.who),
    ['override', 'override'],
  );
});

test("a pulumi in any node_modules/.bin on PATH is not taken for the user's CLI", (t) => {
  const s = setup(t);
  // `npm run` puts the project's and every ancestor's node_modules/.bin on PATH; one is first here, so
  // a script that took the first pulumi on PATH would run it.
  const otherBin = path.join(s.home, 'outer', 'node_modules', '.bin');
  standIn(path.join(otherBin, 'pulumi'), 'node_modules/.bin', s.record);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const result = runStack(['up'], s.env({ PATH: [`${otherBin}/`, otherBin, PROJECT_BIN, s.tools].join(':') }));
  t.is(result.status, 0, result.stderr);
  t.deepEqual(
    calls(s.record).map((c) => c.who),
    ['cache', 'cache'],
  );
});

test('when the CLI cannot be downloaded, one line says so and how to install it, with a non-zero exit', (t) => {
  const s = setup(t);
  // Empty PULUMI_HOME: the wrapper fetches get.pulumi.com's installer; in the namespace that fails at
  // once (no route, no DNS), as it does on a machine without internet.
  const result = runStack(['up', '--yes'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
  t.is(result.status, 1);
  t.is(result.stdout, '');
  const lines = result.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, result.stderr);
  const [line] = lines;
  t.regex(line, new RegExp(`downloading the Pulumi CLI ${WRAPPER_VERSION.replace(/\./g, '\\.')} into ${s.pulumiHome}/versions/`));
  t.regex(line, /failed: the Pulumi CLI could not be downloaded \(fetch failed; full output in /);
  t.regex(line, /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
  t.regex(line, /brew install pulumi\/tap\/pulumi/);
  t.regex(line, /https:\/\/www\.pulumi\.com\/docs\/install\//);
  // The wrapper's own output is kept in the file the line names, not shown.
  const log = /full output in ([^;)]+)\)/.exec(line)![1];
  t.true(log.startsWith(s.home));
  t.regex(
    fs.readFileSync(log, 'utf8'),
    new RegExp(`Downloading pulumi v${WRAPPER_VERSION.replace(/\./g, '\\.')}\\.\\.\\.\\npulumi: fetch failed`),
  );
  t.false(fs.existsSync(cachedCli(s.pulumiHome)));
  t.deepEqual(calls(s.record), []);
});

test('an unknown action prints the usage', (t) => {
  const result = spawnSync('bash', [SCRIPT, 'deploy'], { encoding: 'utf8', timeout: 10_000 });
  t.is(result.status, 2);
  t.regex(result.stderr, /usage: scripts\/stack\.sh up\|destroy\|pulumi/);
});
