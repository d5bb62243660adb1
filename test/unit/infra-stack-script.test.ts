// scripts/stack.sh (npm run up / destroy): which Pulumi CLI it runs, and what it hands that CLI (backend,
// passphrase). Every run happens in a network namespace of its own (only a downed loopback), so nothing
// here can reach outside the machine, even if the script tried to download the CLI when it should not.
// Each test runs its own copy of the project (the script and a link to node_modules), so the state and
// the passphrase file it makes land there, never in this checkout's .pulumi/.
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
  passphraseFile: string | null;
  /** What the CLI read on stdin when it was not a terminal (rekey hands it the new passphrase). */
  stdin: string;
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
  for (const tool of ['bash', 'dirname', 'node', 'mkdir', 'mktemp', 'rm', 'mv']) {
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
  passphrase: e.PULUMI_CONFIG_PASSPHRASE ?? null, passphraseFile: e.PULUMI_CONFIG_PASSPHRASE_FILE ?? null,
  stdin: process.stdin.isTTY ? '' : require('fs').readFileSync(0, 'utf8'), path: e.PATH,
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

/** Runs the project's script in a fresh network namespace with exactly `env` (no inherited PATH or HOME). */
function runStack(project: string, args: string[], env: Record<string, string>) {
  return spawnSync(UNSHARE, [...UNSHARE_NET, '--', 'bash', path.join(project, 'scripts', 'stack.sh'), ...args], {
    encoding: 'utf8',
    env,
    timeout: 30_000,
    input: '',
  });
}

interface Setup {
  home: string;
  /** The project copy the script runs in: scripts/stack.sh and node_modules (a link to this checkout's). */
  project: string;
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
  const project = path.join(home, 'project');
  fs.mkdirSync(path.join(project, 'scripts'), { recursive: true });
  fs.copyFileSync(SCRIPT, path.join(project, 'scripts', 'stack.sh'));
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(project, 'node_modules'));
  return {
    home,
    project,
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
    const result = runStack(s.project, [action, '--yes', '--skip-preview'], s.env({ PATH: [PROJECT_BIN, userBin, s.tools].join(':') }));
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
      t.is(call.backend, `file://${s.project}/.pulumi`);
      t.is(call.passphrase, null);
      t.is(call.passphraseFile, `${s.project}/.pulumi/passphrase`);
    }
  });
}

test('npm run pulumi -- ARGS runs any pulumi command with the same CLI, backend and stack', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const result = runStack(s.project, ['pulumi', 'config', 'set', 'replicas', '3'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
  t.is(result.status, 0, result.stderr);
  const made = calls(s.record);
  t.deepEqual(
    made.map((c) => [c.who, ...c.argv]),
    [
      ['cache', 'stack', 'select', '--create', 'dev'],
      ['cache', 'config', 'set', 'replicas', '3'],
    ],
  );
  for (const call of made) t.is(call.backend, `file://${s.project}/.pulumi`);
});

test('npm run pulumi -- ARGS --stack NAME neither creates nor selects the dev stack', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const result = runStack(
    s.project,
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
  t.is(runStack(s.project, ['up'], s.env({ PATH, PULUMI_CONFIG_PASSPHRASE: 'correct horse' })).status, 0);
  t.is(runStack(s.project, ['up'], s.env({ PATH, PULUMI_CONFIG_PASSPHRASE_FILE: '/dev/null' })).status, 0);
  t.deepEqual(
    calls(s.record).map((c) => c.passphrase),
    ['correct horse', 'correct horse', null, null],
  );
});

test('a first run generates a random passphrase file under .pulumi/ (0600, git-ignored) and every later run uses it', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const PATH = [PROJECT_BIN, s.tools].join(':');
  const file = path.join(s.project, '.pulumi', 'passphrase');
  t.false(fs.existsSync(file));
  const first = runStack(s.project, ['up'], s.env({ PATH }));
  t.is(first.status, 0, first.stderr);
  t.is(first.stderr, '', 'no notice for a new stack');
  const passphrase = fs.readFileSync(file, 'utf8');
  // 32 random bytes in base64; the CLI trims the newline (pulumi/pulumi pkg/secrets/passphrase/manager.go readPassphrase).
  t.regex(passphrase, /^[A-Za-z0-9+/]{43}=\n$/);
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  t.is(runStack(s.project, ['pulumi', 'config', 'get', 'replicas'], s.env({ PATH })).status, 0);
  t.is(fs.readFileSync(file, 'utf8'), passphrase, 'the file is made once, then kept');
  t.deepEqual(fs.readdirSync(path.join(s.project, '.pulumi')), ['passphrase'], 'nothing else is left beside it');
  for (const call of calls(s.record)) {
    t.is(call.passphrase, null);
    t.is(call.passphraseFile, file);
  }
  // Another project copy gets another passphrase.
  const other = setup(t);
  standIn(cachedCli(other.pulumiHome), 'cache', other.record);
  t.is(runStack(other.project, ['up'], other.env({ PATH: [PROJECT_BIN, other.tools].join(':') })).status, 0);
  t.not(fs.readFileSync(path.join(other.project, '.pulumi', 'passphrase'), 'utf8'), passphrase);
  // The checkout's own .pulumi/ (where the file lands for a real run) is git-ignored.
  t.is(spawnSync('git', ['check-ignore', '-q', '.pulumi/passphrase'], { cwd: REPO_ROOT }).status, 0);
});

test('a passphrase the user set, even empty, is kept and no file is made', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const result = runStack(s.project, ['up'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':'), PULUMI_CONFIG_PASSPHRASE: '' }));
  t.is(result.status, 0, result.stderr);
  t.deepEqual(
    calls(s.record).map((c) => [c.passphrase, c.passphraseFile]),
    [
      ['', null],
      ['', null],
    ],
  );
  t.false(fs.existsSync(path.join(s.project, '.pulumi', 'passphrase')));
});

/** A stack as the script left it before passphrases were generated: a salt in its config file and/or its state. */
function madeWithEmptyPassphrase(project: string, stack = 'dev', { salt = true, state = false } = {}): void {
  if (salt)
    fs.writeFileSync(path.join(project, `Pulumi.${stack}.yaml`), 'config:\n  x:replicas: 2\nencryptionsalt: v1:abc=:v1:def:ghi==\n');
  if (state) {
    const dir = path.join(project, '.pulumi', '.pulumi', 'stacks', 'consul-nginx-pulumi');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${stack}.json`), '{}');
  }
}

for (const made of [
  { salt: true, state: false },
  { salt: false, state: true },
]) {
  test(`a stack made with the empty passphrase keeps it, with a notice naming rekey (${made.salt ? 'salt in its config' : 'state only'})`, (t) => {
    const s = setup(t);
    standIn(cachedCli(s.pulumiHome), 'cache', s.record);
    madeWithEmptyPassphrase(s.project, 'dev', made);
    const result = runStack(s.project, ['up', '--yes'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
    t.is(result.status, 0, result.stderr);
    t.is(
      result.stderr.trim(),
      "stack: the dev stack was made with the empty passphrase and keeps it; 'scripts/stack.sh rekey' moves it to a generated one (infra/README.md)",
    );
    t.deepEqual(
      calls(s.record).map((c) => [c.passphrase, c.passphraseFile]),
      [
        ['', null],
        ['', null],
      ],
    );
    t.false(fs.existsSync(path.join(s.project, '.pulumi', 'passphrase')));
  });
}

test('--stack NAME: the named stack decides, not dev', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  madeWithEmptyPassphrase(s.project, 'old');
  const PATH = [PROJECT_BIN, s.tools].join(':');
  t.is(runStack(s.project, ['pulumi', 'stack', 'output', '--stack', 'old'], s.env({ PATH })).status, 0);
  t.is(runStack(s.project, ['pulumi', 'stack', 'output', '--stack=new'], s.env({ PATH })).status, 0);
  t.deepEqual(
    calls(s.record).map((c) => [c.argv.at(-1), c.passphrase, c.passphraseFile]),
    [
      ['old', '', null],
      ['--stack=new', null, `${s.project}/.pulumi/passphrase`],
    ],
  );
});

test('rekey moves a stack made with the empty passphrase to a generated passphrase file, handing the CLI the new one on stdin', (t) => {
  const s = setup(t);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  madeWithEmptyPassphrase(s.project, 'dev', { salt: true, state: true });
  const PATH = [PROJECT_BIN, s.tools].join(':');
  const file = path.join(s.project, '.pulumi', 'passphrase');
  const rekey = runStack(s.project, ['rekey'], s.env({ PATH }));
  t.is(rekey.status, 0, rekey.stderr);
  t.regex(rekey.stderr, /stack: the dev stack now uses the passphrase in .*\/\.pulumi\/passphrase/);
  const [change] = calls(s.record);
  t.deepEqual(change.argv, ['stack', 'change-secrets-provider', '--stack', 'dev', 'passphrase']);
  // The old (empty) passphrase from the environment, the new one on stdin (not a terminal).
  t.is(change.passphrase, '');
  t.is(change.passphraseFile, null);
  t.is(change.stdin, fs.readFileSync(file, 'utf8'));
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  // From now on the stack's runs use the file, without the notice.
  const up = runStack(s.project, ['up'], s.env({ PATH }));
  t.is(up.stderr, '');
  t.deepEqual(
    calls(s.record)
      .slice(1)
      .map((c) => [c.passphrase, c.passphraseFile]),
    [
      [null, file],
      [null, file],
    ],
  );
  // Nothing left to rekey.
  const again = runStack(s.project, ['rekey'], s.env({ PATH }));
  t.is(again.status, 1);
  t.regex(again.stderr, /nothing to rekey/);
});

test('a failed rekey leaves no passphrase file: the stack keeps the empty passphrase', (t) => {
  const s = setup(t);
  const cached = cachedCli(s.pulumiHome);
  fs.mkdirSync(path.dirname(cached), { recursive: true });
  fs.writeFileSync(cached, '#!/bin/sh\necho "error: incorrect passphrase" >&2\nexit 255\n', { mode: 0o755 });
  madeWithEmptyPassphrase(s.project);
  const result = runStack(s.project, ['rekey'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
  t.is(result.status, 1);
  t.regex(result.stderr, /error: incorrect passphrase\nstack: rekey failed; the dev stack keeps the empty passphrase/);
  t.deepEqual(fs.readdirSync(path.join(s.project, '.pulumi')), []);
});

/** Where `npm run tools` (scripts/pulumi-tools.sh) builds the CLI, in a project copy. */
const builtCli = (project: string) => path.join(project, '.tools', 'pulumi', 'bin', 'pulumi');

test('with no pulumi on PATH the CLI the project built (npm run tools) is run before the npm wrapper, its folder first on PATH', (t) => {
  const s = setup(t);
  standIn(builtCli(s.project), 'built', s.record);
  standIn(cachedCli(s.pulumiHome), 'cache', s.record);
  const result = runStack(s.project, ['up', '--yes'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
  t.is(result.status, 0, result.stderr);
  t.is(result.stderr, '');
  const made = calls(s.record);
  t.deepEqual(
    made.map((c) => [c.who, ...c.argv]),
    [
      ['built', 'stack', 'select', '--create', 'dev'],
      ['built', 'up', '--stack', 'dev', '--yes'],
    ],
  );
  // The language host the CLI runs is the one built beside it.
  for (const call of made) t.is(call.path.split(':')[0], path.dirname(builtCli(s.project)));
});

test('a pulumi the user installed wins over the one the project built', (t) => {
  const s = setup(t);
  const userBin = path.join(s.home, 'user-bin');
  standIn(path.join(userBin, 'pulumi'), 'user', s.record);
  standIn(builtCli(s.project), 'built', s.record);
  const result = runStack(s.project, ['up', '--yes'], s.env({ PATH: [PROJECT_BIN, userBin, s.tools].join(':') }));
  t.is(result.status, 0, result.stderr);
  t.deepEqual(
    calls(s.record).map((c) => c.who),
    ['user', 'user'],
  );
});

test('with no pulumi on PATH the CLI the npm wrapper keeps for its version in PULUMI_HOME is run', (t) => {
  const s = setup(t);
  const cached = cachedCli(s.pulumiHome);
  standIn(cached, 'cache', s.record);
  const result = runStack(s.project, ['up', '--yes'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
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
    t.is(call.backend, `file://${s.project}/.pulumi`);
    t.is(call.passphraseFile, `${s.project}/.pulumi/passphrase`);
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
  const child = spawn(UNSHARE, [...UNSHARE_NET, '--', 'bash', path.join(s.project, 'scripts', 'stack.sh'), 'up'], {
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
  const result = runStack(s.project, ['destroy'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':'), PULUMI_VERSION: '3.999.0' }));
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
  const result = runStack(s.project, ['up'], s.env({ PATH: [`${otherBin}/`, otherBin, PROJECT_BIN, s.tools].join(':') }));
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
  const result = runStack(s.project, ['up', '--yes'], s.env({ PATH: [PROJECT_BIN, s.tools].join(':') }));
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
