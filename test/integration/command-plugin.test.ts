// The command stand-in (harness/plugins/command/) under the REAL engine: the Pulumi CLI 3.248.0 runs a scratch
// program of local.Commands and talks to the stand-in over gRPC, as it would to pulumi-command v1.2.1.
// Each step changes the stack's config only and checks what the engine did (ids, outputs, state) and what ran
// (a file the delete commands append to).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { scratchProgram, type ScratchProgram } from '../helpers/real-pulumi';

const PROGRAM = path.join(__dirname, '..', 'fixtures', 'command-plugin', 'index.ts');

interface StackOutputs {
  ids: { greeting: string; step: string; token: string };
  greetingOut: string;
  stepOut: string;
  tokenOut: string;
  shellOut: string;
  hashOut: string;
  echoOut: string;
}

interface PreviewStep {
  op: string;
  urn: string;
}

const SECRET_SIG = '4dabf18193072939515e22adb298388d';
const TOKEN = 's3cret-token-value';

let program: ScratchProgram;
let logFile: string;

test.before(async () => {
  program = await scratchProgram('command-plugin', PROGRAM);
  logFile = path.join(program.dir, '..', 'deletes.log');
  const workdir = path.join(program.dir, '..', 'work dir');
  fs.mkdirSync(workdir);
  await program.ok(['config', 'set', 'log', logFile]);
  await program.ok(['config', 'set', 'workdir', workdir]);
  await program.ok(['config', 'set', '--secret', 'token', TOKEN]);
});

test.after.always(() => program?.remove());

const up = () => program.ok(['up', '--yes', '--skip-preview']);
const outputs = async () => JSON.parse(await program.ok(['stack', 'output', '--json', '--show-secrets'])) as StackOutputs;
const deletes = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');

/** The steps `pulumi preview` plans, by resource name (the stack's own left out). */
async function previewSteps(): Promise<Record<string, string>> {
  const plan = JSON.parse(await program.ok(['preview', '--json'])) as { steps?: PreviewStep[] };
  const steps = (plan.steps ?? []).filter((s) => !s.urn.includes('pulumi:pulumi:Stack'));
  return Object.fromEntries(steps.map((s) => [s.urn.split('::').pop()!, s.op]));
}

function stateOf(exported: string, name: string): { inputs: Record<string, unknown>; outputs: Record<string, unknown> } {
  const deployment = (JSON.parse(exported) as { deployment: { resources: Array<{ urn: string; inputs: never; outputs: never }> } })
    .deployment;
  const resource = deployment.resources.find((r) => r.urn.endsWith(`::${name}`));
  if (!resource) throw new Error(`no ${name} in the state`);
  return resource;
}

const isSecret = (value: unknown) => typeof value === 'object' && value !== null && SECRET_SIG in value;

test.serial(
  'create runs each command once; its stdout (one trailing newline off) is the output; dir, stdin and interpreter apply',
  async (t) => {
    await up();
    const out = await outputs();
    t.is(out.greetingOut, 'hello-world');
    t.is(out.stepOut, 'one after nothing');
    t.regex(out.tokenOut, /^[0-9a-f-]{36}$/);
    t.is(out.shellOut, `${path.join(program.dir, '..', 'work dir')}\nfrom-stdin\nbash 5`);
    // The id is the resource name and 8 hex digits (resource.NewUniqueHex(name, 8, 0)).
    t.regex(out.ids.greeting, /^greeting[0-9a-f]{8}$/);
    t.is(deletes(), '');
  },
);

test.serial('a second up with nothing changed plans no step and runs nothing', async (t) => {
  const before = await outputs();
  t.deepEqual(await previewSteps(), {});
  await up();
  t.deepEqual(await outputs(), before);
  t.is(deletes(), '');
});

test.serial(
  'a changed environment or create is an update: the same id, create runs again with the last stdout in PULUMI_COMMAND_STDOUT',
  async (t) => {
    const before = await outputs();
    await program.ok(['config', 'set', 'who', 'there']);
    await program.ok(['config', 'set', 'step', 'two']);
    t.deepEqual(await previewSteps(), { greeting: 'update', step: 'update' });
    await up();
    const after = await outputs();
    t.deepEqual(after.ids, before.ids);
    t.is(after.greetingOut, 'hello-there');
    t.is(after.stepOut, 'two after one after nothing');
    t.is(after.tokenOut, before.tokenOut);
    t.is(deletes(), '', 'an update runs no delete');
  },
);

test.serial('a changed trigger replaces: a new id and a new run, then the old one is deleted with its own last stdout', async (t) => {
  const before = await outputs();
  await program.ok(['config', 'set', 'generation', '2']);
  t.deepEqual(await previewSteps(), { token: 'replace' });
  await up();
  const after = await outputs();
  t.not(after.ids.token, before.ids.token);
  t.not(after.tokenOut, before.tokenOut);
  t.is(after.ids.step, before.ids.step);
  t.is(deletes(), `token: ${before.tokenOut}\n`);
});

test.serial(
  'a secret environment value reaches the command and stays secret in the state; stdout is secret only when the program asks',
  async (t) => {
    const out = await outputs();
    t.is(out.hashOut, createHash('sha256').update(TOKEN).digest('hex').slice(0, 16));
    t.is(out.echoOut, TOKEN);
    const exported = await program.ok(['stack', 'export']);
    t.false(exported.includes(TOKEN), 'the secret is nowhere in clear in the state');
    const hashed = stateOf(exported, 'secret-hash');
    t.true(isSecret((hashed.inputs.environment as Record<string, unknown>).TOKEN));
    t.true(isSecret((hashed.outputs.environment as Record<string, unknown>).TOKEN));
    // pulumi-go-provider v1.3.0 infer: an output is secret when the input of the same name is; stdout has none.
    t.is(hashed.outputs.stdout, out.hashOut);
    t.true(isSecret(stateOf(exported, 'secret-echo').outputs.stdout));
  },
);

test.serial("a failing command fails its step with the exit status and the command's output", async (t) => {
  await program.ok(['config', 'set', 'fail', 'true']);
  try {
    const result = await program.pulumi(['up', '--yes', '--skip-preview']);
    t.not(result.code, 0);
    const text = `${result.stdout}\n${result.stderr}`;
    t.regex(text, /exit status 3: running "echo to-stdout; echo broken-on-purpose >&2; exit 3"/);
    t.regex(text, /broken-on-purpose/);
  } finally {
    await program.ok(['config', 'rm', 'fail']);
  }
});

test.serial('an input the stand-in does not implement fails Check, naming it', async (t) => {
  await program.ok(['config', 'set', 'refused', 'true']);
  try {
    const result = await program.pulumi(['preview']);
    t.not(result.code, 0);
    t.regex(`${result.stdout}\n${result.stderr}`, /does not implement command:local:Command "assetPaths"/);
  } finally {
    await program.ok(['config', 'rm', 'refused']);
  }
});

test.serial('destroy runs each delete with the last stdout of its resource', async (t) => {
  const out = await outputs();
  const before = deletes();
  await program.ok(['destroy', '--yes', '--skip-preview']);
  const ran = deletes().slice(before.length).trim().split('\n').sort();
  t.deepEqual(ran, [`step: ${out.stepOut}`, `token: ${out.tokenOut}`].sort());
});
