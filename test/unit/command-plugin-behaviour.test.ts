// The command stand-in's rules without the engine: its behaviour table as read from pulumi-command v1.2.1,
// Check and Diff following it, and the lifecycle (what runs at create, update and delete, with which
// environment, and what the state then holds).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { CONNECTION, LOCAL_COMMAND, REMOTE_COMMAND, type BehaviourTable } from '../../harness/plugins/command/behaviour';
import { commandResource, type CommandRunner, type Outputs } from '../../harness/plugins/command/command';
import { checkInputs, diffInputs, reveal, secret } from '../../harness/plugins/command/inputs';
import { localCommand } from '../../harness/plugins/command/local';
import type { Props } from '../../harness/plugins/provider-server';

const URN = 'urn:pulumi:dev::p::command:local:Command::gen';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-command-plugin-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('the table: triggers is the only input whose change replaces; every other input updates in place', (t) => {
  for (const table of [LOCAL_COMMAND, REMOTE_COMMAND]) {
    t.deepEqual(
      Object.entries(table)
        .filter(([, b]) => b.change === 'replace')
        .map(([k]) => k),
      ['triggers'],
    );
  }
  t.deepEqual(Object.keys(LOCAL_COMMAND).sort(), [
    'addPreviousOutputInEnv',
    'archivePaths',
    'assetPaths',
    'create',
    'delete',
    'dir',
    'environment',
    'interpreter',
    'logging',
    'stdin',
    'triggers',
    'update',
  ]);
  t.deepEqual(Object.keys(REMOTE_COMMAND).sort(), [
    'addPreviousOutputInEnv',
    'connection',
    'create',
    'delete',
    'environment',
    'logging',
    'stdin',
    'triggers',
    'update',
  ]);
});

test('the table names the pulumi-command v1.2.1 file of each input; what the stand-in refuses says why', (t) => {
  const tables: Record<string, BehaviourTable> = { local: LOCAL_COMMAND, remote: REMOTE_COMMAND, connection: CONNECTION };
  for (const [name, table] of Object.entries(tables)) {
    for (const [key, behaviour] of Object.entries(table)) {
      t.regex(behaviour.source, /^(common|local|remote)\/[a-zA-Z_]+\.go$/, `${name}.${key}`);
      if (behaviour.refused !== undefined) t.true(behaviour.refused.length > 10, `${name}.${key}`);
    }
  }
  const refused = (table: BehaviourTable) =>
    Object.entries(table)
      .filter(([, b]) => b.refused)
      .map(([k]) => k);
  t.deepEqual(refused(LOCAL_COMMAND), ['assetPaths', 'archivePaths']);
  t.deepEqual(refused(REMOTE_COMMAND), ['environment']);
  t.deepEqual(refused(CONNECTION), ['password', 'privateKeyPassword', 'agentSocketPath', 'proxy']);
});

test('Check fails an input it does not know, or one it refuses, naming it; also inside connection', (t) => {
  const unknown = checkInputs(LOCAL_COMMAND, { create: 'x', creat: 'y' }, 'command:local:Command');
  t.deepEqual(
    unknown.failures.map((f) => f.property),
    ['creat'],
  );
  t.regex(unknown.failures[0].reason, /command:local:Command has no input "creat"; its inputs are triggers, create, /);
  const refused = checkInputs(LOCAL_COMMAND, { create: 'x', assetPaths: ['*'] }, 'command:local:Command');
  t.regex(refused.failures[0].reason, /does not implement command:local:Command "assetPaths": assets are not produced/);
  const nested = checkInputs(REMOTE_COMMAND, { create: 'x', connection: { host: 'h', password: 'p', bogus: 1 } }, 'command:remote:Command');
  t.deepEqual(
    nested.failures.map((f) => f.property),
    ['connection.password', 'connection.bogus'],
  );
  t.deepEqual(
    checkInputs(REMOTE_COMMAND, { create: 'x' }, 'command:remote:Command').failures.map((f) => f.property),
    ['connection'],
  );
  t.deepEqual(
    checkInputs(REMOTE_COMMAND, { connection: { port: 22 } }, 'r').failures.map((f) => f.property),
    ['connection.host'],
  );
});

test('Check refuses a value of the wrong shape, and an unknown logging mode', (t) => {
  const check = (news: Props) => checkInputs(LOCAL_COMMAND, news, 'l').failures.map((f) => f.reason);
  t.deepEqual(check({ create: 1 }), ['l "create": expected a string, got 1']);
  t.deepEqual(check({ environment: { A: 1 } }), ['l "environment": expected a stringMap, got {"A":1}']);
  t.regex(check({ logging: 'all' })[0], /expected one of stdout, stderr, stdoutAndStderr, none/);
  t.deepEqual(check({ create: 'x', logging: 'none', interpreter: ['/bin/bash', '-c'], addPreviousOutputInEnv: false }), []);
});

test("Check fills the connection's defaults and marks it secret, as the provider's Check does", (t) => {
  const { inputs, failures } = checkInputs(REMOTE_COMMAND, { create: 'x', connection: { host: '127.0.0.1', port: 2201 } }, 'r');
  t.deepEqual(failures, []);
  t.deepEqual(inputs.connection, secret({ host: '127.0.0.1', port: 2201, user: 'root', perDialTimeout: 15, dialErrorLimit: 10 }));
  t.deepEqual(reveal(inputs), {
    create: 'x',
    connection: { host: '127.0.0.1', port: 2201, user: 'root', perDialTimeout: 15, dialErrorLimit: 10 },
  });
});

test('Diff: a trigger change replaces; create, environment or connection changes update; outputs in the state are not inputs', (t) => {
  const olds = { create: 'a', environment: { A: '1' }, triggers: ['1'], stdout: 'out', stderr: '' };
  t.deepEqual(diffInputs(LOCAL_COMMAND, olds, { create: 'a', environment: { A: '1' }, triggers: ['1'] }), { changed: [], replaces: [] });
  t.deepEqual(diffInputs(LOCAL_COMMAND, olds, { create: 'a', environment: { A: '1' }, triggers: ['2'] }), {
    changed: ['triggers'],
    replaces: ['triggers'],
  });
  t.deepEqual(diffInputs(LOCAL_COMMAND, olds, { create: 'b', environment: { A: '2' }, triggers: ['1'] }), {
    changed: ['create', 'environment'],
    replaces: [],
  });
  // A new `delete` alone is an update too: it runs create again (infer's Diff knows no input that changes nothing).
  t.deepEqual(diffInputs(LOCAL_COMMAND, olds, { ...olds, delete: 'rm x' }).changed, ['delete']);
  const remote = { create: 'a', connection: { host: 'h', port: 22 } };
  t.deepEqual(diffInputs(REMOTE_COMMAND, remote, { ...remote, connection: secret({ host: 'h', port: 2222 }) }), {
    changed: ['connection'],
    replaces: [],
  });
  t.deepEqual(diffInputs(REMOTE_COMMAND, remote, { ...remote, connection: secret({ host: 'h', port: 22 }) }).changed, []);
});

/** A resource whose runner records what it was asked to run. */
function recording(outputs: Outputs = { stdout: 'new-out', stderr: 'new-err' }) {
  const runs: Array<{ command: string; previous: Outputs }> = [];
  const run: CommandRunner = (command, _inputs, previous) => {
    runs.push({ command, previous });
    return Promise.resolve(outputs);
  };
  return { runs, handlers: commandResource('command:local:Command', LOCAL_COMMAND, run) };
}

test('create runs create and keeps the inputs beside stdout and stderr; the id is the name and 8 hex digits', async (t) => {
  const { runs, handlers } = recording();
  const { id, outs } = await handlers.create({ create: 'make', dir: '/d' }, 0, URN);
  t.regex(id, /^gen[0-9a-f]{8}$/);
  t.deepEqual(outs, { create: 'make', dir: '/d', stdout: 'new-out', stderr: 'new-err' });
  t.deepEqual(runs, [{ command: 'make', previous: { stdout: '', stderr: '' } }]);
  // Without create nothing runs and the outputs are empty.
  const bare = recording();
  t.deepEqual((await bare.handlers.create({ delete: 'rm x' }, 0, URN)).outs, { delete: 'rm x', stdout: '', stderr: '' });
  t.deepEqual(bare.runs, []);
});

test('update runs update, else create, with the last outputs; with neither, the last outputs stay', async (t) => {
  const olds = { create: 'make', stdout: 'old-out', stderr: 'old-err' };
  const previous = { stdout: 'old-out', stderr: 'old-err' };
  const a = recording();
  t.deepEqual(await a.handlers.update('id', olds, { create: 'make2', update: 'refresh' }, 0), {
    create: 'make2',
    update: 'refresh',
    stdout: 'new-out',
    stderr: 'new-err',
  });
  t.deepEqual(a.runs, [{ command: 'refresh', previous }]);
  const b = recording();
  await b.handlers.update('id', olds, { create: 'make2' }, 0);
  t.deepEqual(b.runs, [{ command: 'make2', previous }]);
  const c = recording();
  t.deepEqual(await c.handlers.update('id', olds, { delete: 'rm' }, 0), { delete: 'rm', ...previous });
  t.deepEqual(c.runs, []);
});

test("delete runs delete with the state's inputs and last outputs; read returns the state as it is", async (t) => {
  const { runs, handlers } = recording();
  await handlers.delete('id', { create: 'make', delete: 'clean', stdout: 'o', stderr: '' }, 0);
  t.deepEqual(runs, [{ command: 'clean', previous: { stdout: 'o', stderr: '' } }]);
  await handlers.delete('id', { create: 'make', stdout: 'o', stderr: '' }, 0);
  t.is(runs.length, 1);
  const props = { create: 'make', stdout: 'o', stderr: '' };
  t.deepEqual(await handlers.read('id', props, { create: 'make' }), { id: 'id', props, inputs: { create: 'make' } });
});

test('local: the environment, dir, stdin and the last outputs reach the command; one trailing newline is taken off', async (t) => {
  const script = 'printf "%s|%s|%s|" "$A" "$PULUMI_COMMAND_STDOUT" "$(pwd)"; cat; echo err >&2';
  const news = { create: script, environment: { A: 'a1' }, dir: tmp, stdin: 'in\n' };
  const created = await localCommand.create(news, 0, URN);
  t.is(created.outs.stdout, `a1||${tmp}|in`);
  t.is(created.outs.stderr, 'err');
  const updated = await localCommand.update(created.id, created.outs, news, 0);
  t.is(updated.stdout, `a1|a1||${tmp}|in|${tmp}|in`);
  const quiet = await localCommand.update(created.id, updated, { ...news, addPreviousOutputInEnv: false }, 0);
  t.is(quiet.stdout, `a1||${tmp}|in`);
});

test('local: a failed command fails with its exit status, the command and its output', async (t) => {
  const error = await t.throwsAsync(localCommand.create({ create: 'echo partial; echo bad >&2; exit 7' }, 0, URN));
  t.is(error?.message, 'exit status 7: running "echo partial; echo bad >&2; exit 7":\npartial\nbad\n');
  const killed = await t.throwsAsync(localCommand.create({ create: 'exec sleep 5' }, 1, URN));
  t.is(killed?.message, 'signal: killed: running "exec sleep 5":\n');
});
