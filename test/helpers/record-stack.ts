// Runs the real Pulumi program (the entry Pulumi.yaml's `main` names) under the SDK's mock runtime
// and records every resource it declares, with resolved inputs and the options the engine would use.
// Unit tests of the program's own rules assert on the record; the system tests run the program with the real CLI.
//
// Shape of a record:
//
//   RecordedStack = {
//     resources: RecordedResource[];     // declaration order; the root pulumi:pulumi:Stack is left out
//     outputs: Record<string, unknown>;  // the stack outputs (the program's exports), resolved
//     secretOutputs: string[];           // the outputs that are Pulumi secrets (shown only with --show-secrets)
//   }
//   RecordedResource = {
//     type: string;      // 'docker:index/container:Container', 'docker:index/image:Image', 'docker:index/network:Network',
//                        // 'docker:index/volume:Volume', 'command:local:Command', 'command:remote:Command',
//                        // 'pulumi:providers:docker',
//                        // or a component's own type such as 'cnp:infra:ConsulAgent'
//     name: string;      // the Pulumi logical name (unique per type in a valid program)
//     custom: boolean;   // false for ComponentResources (they have no inputs of their own)
//     inputs: Record<string, unknown>;  // every input as the provider receives it, all Outputs resolved.
//                        // Values produced by a provider are mocked as the engine would report them for a
//                        // local build: an Image's repoDigest (what containers use as `image`) is a `sha256:`
//                        // id derived from its build inputs and context (engine-like.cjs mockImageId), so a
//                        // code change gives a new id; a local.Command running GOSSIP_KEY_SCRIPT reports a fixed
//                        // stand-in key (MOCK_GOSSIP_KEY) as its stdout, a UUID_COMMAND a UUID derived from the stack and
//                        // the resource's name (mockGeneratedUuid), a VM's bootstrap (remote.Command running
//                        // infra/vm-bootstrap.sh) `vm-bootstrap: architecture <arch>` (x86_64 unless
//                        // vmArchitectures says otherwise), other commands an empty one; other outputs
//                        // echo the inputs (a Network's or Volume's name). Secrets appear as their plain values.
//     outputs: Record<string, unknown>; // what the mock reported (an Image's repoDigest among them)
//     secretInputs: string[];            // the top-level inputs that hold a secret (shown plain in `inputs`)
//     options: {
//       dependsOn: string[];           // names of the resources in `dependsOn` (explicit ones only)
//       dependencies: string[];        // everything it waits for, as the engine orders creation: dependsOn plus
//                                      // the resources whose outputs feed its inputs (e.g. the network's name)
//       deleteBeforeReplace: boolean;
//       replaceOnChanges: string[];    // input paths whose change replaces the resource whatever the provider says
//       ignoreChanges?: string[];      // input paths whose change the engine ignores; absent when none
//       aliases?: string[];            // names the resource had before (its aliases' names); absent when none
//       parent?: string;               // name of the parent component; absent at the top level
//       provider?: string;             // name of an explicit provider resource; absent = the default provider
//     };
//   }
//
// recordStack({ declare }) records what a function declares instead (a test of single components).
//
// recordStack() rejects with the program's own Error when the program throws (a bad config value);
// that error carries `resources`: what had been declared before it threw.
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import * as pulumi from '@pulumi/pulumi';
import crypto from 'node:crypto';
import * as rpc from '@pulumi/pulumi/runtime/rpc';
import { GOSSIP_KEY_SCRIPT } from '../../infra/gossip-key';
import { UUID_COMMAND } from '../../infra/consul-acl';
import { CONSUL_TLS_SCRIPT } from '../../infra/consul-tls';
import { BOOTSTRAP_SCRIPT_PATH } from '../../infra/vm-host';

/**
 * What the mocked gossip-key command prints: the mock runs no command, and the program needs a well-formed
 * key (32 bytes, base64) for Consul's -encrypt, which the system test starts for real.
 */
export const MOCK_GOSSIP_KEY = Buffer.from('cnp mock gossip key, 32 bytes...').toString('base64');

export interface RecordedResource {
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  secretInputs: string[];
  options: {
    dependsOn: string[];
    dependencies: string[];
    deleteBeforeReplace: boolean;
    replaceOnChanges: string[];
    ignoreChanges?: string[];
    aliases?: string[];
    parent?: string;
    provider?: string;
  };
}

export interface RecordedStack {
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
  secretOutputs: string[];
}

export interface RecordOptions {
  /**
   * Config values by key without namespace, e.g. { replicas: 3 }; passed as strings, as the CLI does, and
   * structured values (objects, lists) as JSON, as the CLI passes `pulumi config set --path` values.
   */
  config?: Record<string, string | number | object>;
  /** Config values held as secrets (`pulumi config set --secret`), by key without namespace. */
  secrets?: Record<string, string>;
  stack?: string;
  /** Defaults to Pulumi.yaml's `name`. */
  project?: string;
  /** The project folder whose program runs; defaults to this checkout (a test may run a changed copy). */
  projectDir?: string;
  /**
   * Declares resources instead of the program: a test of single components constructs them here. Its
   * images' ids are derived from projectDir as the program's are.
   */
  declare?: () => unknown;
  /** What each VM's bootstrap reports as its `uname -m`, by VM name; x86_64 for a VM not named. */
  vmArchitectures?: Record<string, string>;
}

export type ProgramError = Error & { resources: RecordedResource[] };

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

// js-yaml comes with @pulumi/pulumi and is declared in devDependencies; its types are not installed.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { load(text: string): unknown };

/** Pulumi.yaml, parsed. */
export function readProjectFile(projectDir = REPO_ROOT): Record<string, unknown> {
  return yaml.load(fs.readFileSync(path.join(projectDir, 'Pulumi.yaml'), 'utf8')) as Record<string, unknown>;
}

/**
 * The `default` of every key Pulumi.yaml declares: the CLI hands them to the program for every key the stack
 * does not set (pulumi/pulumi sdk/go/common/workspace/config.go, mergeConfig), so the recording does too.
 */
export function projectDefaults(projectDir = REPO_ROOT): Record<string, string | number | object> {
  const declared = (readProjectFile(projectDir).config ?? {}) as Record<string, { default?: string | number | object }>;
  return Object.fromEntries(
    Object.entries(declared).flatMap(([key, declared]) => (declared.default === undefined ? [] : [[key, declared.default]])),
  );
}

/** A stack file's (Pulumi.<stack>.yaml) values for this project, keys without the namespace, as strings. */
export function readStackConfig(stack: string): Record<string, string> {
  const file = yaml.load(fs.readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), 'utf8')) as {
    config?: Record<string, unknown>;
  };
  const prefix = `${String(readProjectFile().name)}:`;
  return Object.fromEntries(
    Object.entries(file.config ?? {})
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), String(value)]),
  );
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const engineLike = require('./engine-like.cjs') as {
  engineEntry(projectDir: string): { pwd: string; program: string; hasTsconfig: boolean };
  mockImageId(inputs: Record<string, unknown>, projectDir: string): string;
};

/** The program's entry file as the engine and the language host find it from Pulumi.yaml and package.json. */
export function programEntry(projectDir = REPO_ROOT): string {
  return engineLike.engineEntry(projectDir).program;
}

/** What infra/consul-tls.sh would print for the resource `name`: a stand-in certificate and key, PEM-shaped. */
export function mockPem(name: string): string {
  return `-----BEGIN CERTIFICATE-----\nmock certificate of ${name}\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nmock key of ${name}\n-----END PRIVATE KEY-----\n`;
}

/**
 * What a command that prints a random UUID (infra/consul-acl.ts UUID_COMMAND) would have printed: a
 * UUID, derived from the stack and the resource's name so that it stays the same across recordings, as
 * the engine keeps the first create's stdout in the state.
 */
function mockGeneratedUuid(stack: string, resourceName: string): string {
  const hex = crypto.createHash('sha256').update(`${stack}\0${resourceName}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Provider-computed outputs the mock reports, beyond echoing the inputs. */
function mockedState(
  type: string,
  name: string,
  stack: string,
  inputs: Record<string, unknown>,
  projectDir: string,
  vmArchitectures: Record<string, string>,
): Record<string, unknown> {
  if (type === 'docker:index/image:Image') return { ...inputs, repoDigest: engineLike.mockImageId(inputs, projectDir) };
  if (type === 'command:local:Command') {
    // pulumi-command reports what the create printed; only the generators' output is predictable.
    if (inputs.create === GOSSIP_KEY_SCRIPT) return { ...inputs, stdout: MOCK_GOSSIP_KEY, stderr: '' };
    if (inputs.create === UUID_COMMAND) return { ...inputs, stdout: mockGeneratedUuid(stack, name), stderr: '' };
    if (String(inputs.create).startsWith(CONSUL_TLS_SCRIPT)) return { ...inputs, stdout: mockPem(name), stderr: '' };
    return { ...inputs, stdout: '', stderr: '' };
  }
  if (type === 'command:remote:Command') {
    const isBootstrap = inputs.stdin === fs.readFileSync(BOOTSTRAP_SCRIPT_PATH, 'utf8');
    const architecture = vmArchitectures[name.replace(/-bootstrap$/, '')] ?? 'x86_64';
    return { ...inputs, stdout: isBootstrap ? `vm-bootstrap: architecture ${architecture}` : '', stderr: '' };
  }
  return inputs;
}

/** A value with every secret (the SDK's wrapper, as the mock receives it) replaced by its plain value. */
function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  if (record[rpc.specialSigKey] === rpc.specialSecretSig) return revealed(record.value);
  return Object.fromEntries(Object.entries(record).map(([key, item]) => [key, revealed(item)]));
}

function holdsSecret(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if ((value as Record<string, unknown>)[rpc.specialSigKey] === rpc.specialSecretSig) return true;
  return Object.values(value).some(holdsSecret);
}

function forgetProgramModules(entry: string): void {
  const programDir = path.dirname(entry) + path.sep;
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(programDir)) delete require.cache[key];
  }
}

/**
 * An Output's value; undefined when it failed (an error thrown in an apply, which the run reports) or, once the
 * run failed, when it is still unknown after a moment (it waits for a resource that was never registered).
 */
function settled<T>(output: pulumi.Output<T>, failedRun = false): Promise<T> {
  // Output.promise() (internal to the SDK) rather than apply(): an apply's own Output would reject again, unhandled.
  return unlessStuck((output as unknown as { promise(): Promise<T> }).promise(), undefined as T, failedRun);
}

/** `value`, or `fallback` if it fails, or if it has not come a moment after the run failed (it never will). */
function unlessStuck<T>(value: Promise<T>, fallback: T, failedRun: boolean): Promise<T> {
  const safe = value.catch(() => fallback);
  return failedRun ? Promise.race([safe, new Promise<T>((resolve) => setTimeout(() => resolve(fallback), 50))]) : safe;
}

async function resolveResources(value: unknown, failedRun = false): Promise<pulumi.Resource[]> {
  if (value === undefined) return [];
  const resolved = pulumi.Output.isInstance(value) ? await settled(value, failedRun) : await Promise.resolve(value);
  if (resolved === undefined) return [];
  return (Array.isArray(resolved) ? resolved : [resolved]) as pulumi.Resource[];
}

/** Resources behind every Output found in a resource's inputs (the dependencies the SDK infers). */
async function resourcesFeeding(value: unknown, found = new Set<pulumi.Resource>(), failedRun = false): Promise<Set<pulumi.Resource>> {
  if (pulumi.Output.isInstance(value)) {
    const output = value as unknown as { allResources(): Promise<Set<pulumi.Resource>> };
    for (const resource of await unlessStuck(output.allResources(), new Set(), failedRun)) found.add(resource);
    await resourcesFeeding(await settled(value, failedRun), found, failedRun);
  } else if (Array.isArray(value)) {
    for (const item of value) await resourcesFeeding(item, found, failedRun);
  } else if (value !== null && typeof value === 'object' && !pulumi.Resource.isInstance(value)) {
    // A promise among the inputs rejects when an apply it waits for failed (the run's error, reported).
    for (const item of Object.values(value)) await resourcesFeeding(await Promise.resolve(item).catch(() => undefined), found, failedRun);
  }
  return found;
}

// Internal to the SDK (not in its typings): resolves when the runtime's outstanding RPCs are done.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtimeSettings = require('@pulumi/pulumi/runtime/settings') as { waitForRPCs(): Promise<void> };
// Internal to the SDK as well: the promises it reports as leaked at exit, and a way to forget them.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const debuggable = require('@pulumi/pulumi/runtime/debuggable') as { leakedPromises(): unknown };

let queue: Promise<unknown> = Promise.resolve();

/**
 * Catches the unhandled rejections of a run: an error thrown in an apply (a value known only once a resource
 * reported it) rejects the registrations fed by it, which the language host reports as the run's error
 * (sdk/nodejs/cmd/run/run.ts, uncaughtHandler); resources waiting for that value are never registered. Ava's
 * own handlers are set aside meanwhile, so the error is the recording's, not the test's.
 */
function watchRejections(): { failed: Promise<unknown>; stop(): Promise<void> } {
  const avaHandlers = process.listeners('unhandledRejection');
  process.removeAllListeners('unhandledRejection');
  let onRejection: (reason: unknown) => void = () => undefined;
  const failed = new Promise<unknown>((resolve) => (onRejection = resolve));
  process.on('unhandledRejection', onRejection);
  return {
    failed,
    async stop() {
      // Rejections of the same error still on their way through the registrations fed by it.
      await new Promise((r) => setTimeout(r, 100));
      process.removeListener('unhandledRejection', onRejection);
      for (const handler of avaHandlers) process.on('unhandledRejection', handler);
    },
  };
}

/** Records one run of the program; runs are serialized (the runtime's state is per process). */
export function recordStack(options: RecordOptions = {}): Promise<RecordedStack> {
  const run = queue.then(() => recordOnce(options));
  queue = run.catch(() => undefined);
  return run;
}

async function recordOnce(options: RecordOptions): Promise<RecordedStack> {
  const project = options.project ?? String(readProjectFile().name);
  const stack = options.stack ?? 'dev';
  const projectDir = options.projectDir ?? REPO_ROOT;
  const entry = programEntry(projectDir);

  const registered = new Map<
    string,
    { inputs: Record<string, unknown>; secretInputs: string[]; state: Record<string, unknown>; custom: boolean; provider: string }[]
  >();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const key = `${args.type}::${args.name}`;
        const list = registered.get(key) ?? [];
        const raw = args.inputs as Record<string, unknown>;
        const inputs = revealed(raw) as Record<string, unknown>;
        const secretInputs = Object.keys(raw).filter((key) => holdsSecret(raw[key]));
        const state = mockedState(args.type, args.name, stack, inputs, projectDir, options.vmArchitectures ?? {});
        list.push({ inputs, secretInputs, state, custom: args.custom ?? true, provider: args.provider ?? '' });
        registered.set(key, list);
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs as Record<string, unknown>,
    },
    project,
    stack,
    false,
  );
  const configValue = (value: string | number | object) => (typeof value === 'object' ? JSON.stringify(value) : String(value));
  pulumi.runtime.setAllConfig(
    Object.fromEntries(
      Object.entries({ ...projectDefaults(projectDir), ...options.config, ...options.secrets }).map(([key, value]) => [
        `${project}:${key}`,
        configValue(value),
      ]),
    ),
    Object.keys(options.secrets ?? {}).map((key) => `${project}:${key}`),
  );
  forgetProgramModules(entry);

  const declared: {
    resource: pulumi.Resource;
    type: string;
    name: string;
    props: Record<string, unknown>;
    opts: pulumi.ResourceOptions;
  }[] = [];
  let programError: unknown;
  let exported: Record<string, unknown> = {};
  const rejections = watchRejections();
  let applyError: unknown;
  const outputs = await pulumi.runtime
    .runInPulumiStack(async () => {
      pulumi.runtime.registerStackTransformation((args) => {
        declared.push({ resource: args.resource, type: args.type, name: args.name, props: args.props, opts: args.opts });
        return undefined;
      });
      try {
        if (options.declare) return options.declare();
        // Loaded the way the language host loads a program: required, from a cache cleared above.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        exported = require(entry) as Record<string, unknown>;
        return exported;
      } catch (error) {
        programError = error;
        return undefined;
      }
    })
    // The stack's outputs fed by a value an apply failed on.
    .catch((error: unknown) => {
      applyError = error;
      return undefined;
    });

  // Every registration has reached the mock once each resource's URN is known; then let the last RPCs
  // (the stack's own outputs) finish, or they would reach the next run's mock. An error the program throws
  // in an apply ends the run instead.
  if (applyError === undefined) {
    applyError = await Promise.race([
      (async () => {
        await Promise.all(declared.map((d) => settled(d.resource.urn)));
        await runtimeSettings.waitForRPCs();
        return undefined;
      })().catch((error: unknown) => error),
      rejections.failed,
    ]);
  }
  await rejections.stop();
  if (applyError !== undefined) {
    programError ??= applyError;
    // The registrations that waited for that value never finish (the language host exits there): forget them,
    // or the SDK reports them as leaked promises when the test process exits.
    debuggable.leakedPromises();
  }

  const names = new Map<pulumi.Resource, string>(declared.map((d) => [d.resource, d.name]));
  const taken = new Map<string, number>();
  const resources: RecordedResource[] = [];
  for (const d of declared) {
    const key = `${d.type}::${d.name}`;
    const index = taken.get(key) ?? 0;
    taken.set(key, index + 1);
    const registration = registered.get(key)?.[index];
    const dependsOn = (await resolveResources(d.opts.dependsOn, programError !== undefined)).map((r) => names.get(r) ?? '<unknown>');
    const fedBy = [...(await resourcesFeeding(d.props, new Set(), programError !== undefined))].map((r) => names.get(r) ?? '<unknown>');
    const dependencies = [...new Set([...dependsOn, ...fedBy])].filter((n) => n !== d.name);
    const parent = d.opts.parent ? names.get(d.opts.parent) : undefined;
    const explicitProvider = (d.opts as pulumi.CustomResourceOptions).provider;
    const provider = explicitProvider ? names.get(explicitProvider) : providerName(registration?.provider ?? '');
    resources.push({
      type: d.type,
      name: d.name,
      custom: registration?.custom ?? true,
      inputs: registration?.inputs ?? {},
      outputs: registration?.state ?? {},
      secretInputs: registration?.secretInputs ?? [],
      options: {
        dependsOn,
        dependencies,
        deleteBeforeReplace: (d.opts as pulumi.CustomResourceOptions).deleteBeforeReplace === true,
        replaceOnChanges: d.opts.replaceOnChanges ?? [],
        ...(d.opts.ignoreChanges?.length ? { ignoreChanges: d.opts.ignoreChanges } : {}),
        ...(aliasNames(d.opts.aliases).length ? { aliases: aliasNames(d.opts.aliases) } : {}),
        ...(parent !== undefined ? { parent } : {}),
        ...(provider !== undefined ? { provider } : {}),
      },
    });
  }

  if (programError !== undefined) {
    const error = (programError instanceof Error ? programError : new Error(inspect(programError))) as ProgramError;
    error.resources = resources;
    throw error;
  }
  const secretOutputs: string[] = [];
  for (const [key, value] of Object.entries(exported)) {
    if (pulumi.Output.isInstance(value) && (await pulumi.isSecret(value))) secretOutputs.push(key);
  }
  return { resources, outputs: outputs ?? {}, secretOutputs };
}

/** The names of a resource's aliases that rename it (the SDK adds type-only aliases of its own, e.g. to docker.Image). */
function aliasNames(aliases: pulumi.ResourceOptions['aliases']): string[] {
  return (aliases ?? []).flatMap((alias) => {
    const name = typeof alias === 'object' ? (alias as pulumi.Alias).name : undefined;
    return typeof name === 'string' ? [name] : [];
  });
}

/** The logical name in a provider reference (`urn::id`), unless it is a default provider. */
function providerName(reference: string): string | undefined {
  const urn = reference.split('::').slice(0, -1).join('::');
  const name = urn.split('::').pop();
  if (!name || name.startsWith('default')) return undefined;
  return name;
}
