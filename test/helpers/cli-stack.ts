// A stack of the project driven through the real Pulumi CLI (.tools/pulumi/bin, built by npm run tools), as a
// user drives it: `pulumi config set` into the stack's file, `pulumi up`, `pulumi stack output`, `pulumi destroy`,
// on a file backend of its own, offline, with the provider stand-ins of harness/plugins/bin on PATH
// (test/helpers/pulumi-cli.ts). What a deploy did comes from the engine's own events (`pulumi up --event-log`), what
// the stack holds from its state (`pulumi stack export`), and how containers stopped from the Docker engine's events.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileBackendEnv, runPulumiOk } from './pulumi-cli';
import { docker } from './docker';

/** One step the engine reported, from `--event-log` (sdk/go/common/apitype/events.go). */
export interface StepEvent {
  sequence: number;
  /** resourcePreEvent: the step began; resOutputsEvent: it finished; resOpFailedEvent: it failed. */
  kind: 'pre' | 'outputs' | 'failed';
  op: string;
  /** `type::name`: the resource's type (without its parents' types) and its name in the program. */
  key: string;
  urn: string;
  oldInputs?: Record<string, unknown>;
}

/** What one `pulumi up` or `pulumi destroy` did, by resource key, from the engine's events. */
export interface CliSummary {
  created: string[];
  /** Replaced (the engine's logical `replace` step: create-replacement and delete-replaced, or the reverse). */
  replaced: string[];
  updated: string[];
  deleted: string[];
  same: string[];
  /** Every step that changed something, `op key`, in the order the engine began them (`same`/`replace` left out). */
  steps: string[];
  events: StepEvent[];
  /** Epoch ms: when the command was started and when it ended (for the Docker engine's events). */
  startedAt: number;
  endedAt: number;
  output: string;
}

/** A resource of the state (`pulumi stack export --show-secrets`), secrets unwrapped. */
export interface StateResource {
  urn: string;
  type: string;
  custom: boolean;
  id?: string;
  /** The resource's name in the program (the URN's last part). */
  name: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** The name of its provider resource (e.g. vm2-docker), '' for a default provider. */
  providerName: string;
}

/** How a container of the stack went away, from the Docker engine's events (`docker events`). */
export interface RemovedContainer {
  name: string;
  /** The container's exit code when it died (before it was removed). */
  exitCode?: number;
  /** From the stop signal (SIGTERM) to its death. */
  stopMs: number;
  /** True when a SIGKILL was sent (the grace ran out, or a forced removal of a running container). */
  killed: boolean;
  /** When it was removed (epoch ms, the engine's `destroy` event). */
  destroyedAt: number;
}

const nameOf = (urn: string) => urn.split('::').pop() ?? urn;
const keyOf = (type: string, urn: string) => `${type}::${nameOf(urn)}`;

/** The secret envelope of the state (sdk/go/common/resource/sig): `plaintext` holds the value as JSON. */
const SECRET_SIG = '4dabf18193072939515e22adb298388d';

function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if (object[SECRET_SIG] === '1b47061264138c4ac30d75fd1eb44270' && typeof object.plaintext === 'string')
      return unwrapSecrets(JSON.parse(object.plaintext));
    return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

/** Where a command runs (the stack's project folder unless told) and how long it may take. */
export interface CallOptions {
  cwd?: string;
  timeoutMs?: number;
}

export class CliStack {
  /** The file backend, PULUMI_HOME and the event logs, in a temporary folder `cnp-<stack>-*`. */
  readonly root: string;
  private readonly env: NodeJS.ProcessEnv;
  private eventLogs = 0;

  /**
   * `dir` holds the project (Pulumi.yaml) and the stack's file; every command runs there unless given a `cwd`.
   * With `projectBackend` the state lives where scripts/stack.sh keeps it, `<dir>/.pulumi`, so the project's own
   * commands (`npm run pulumi`, `npm run vm:forget`) run by `script` see this stack.
   */
  constructor(
    readonly stack: string,
    readonly dir: string,
    passphrase = `systest-${stack}`,
    { projectBackend = false }: { projectBackend?: boolean } = {},
  ) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `cnp-${stack}-`));
    if (projectBackend) fs.mkdirSync(path.join(dir, '.pulumi'), { recursive: true });
    this.env = {
      ...fileBackendEnv(this.root, passphrase),
      ...(projectBackend ? { PULUMI_BACKEND_URL: `file://${path.join(dir, '.pulumi')}` } : {}),
      // `--event-log` exists only with this set (pkg/cmd/pulumi/operations/up.go and destroy.go: the flag is
      // registered `if env.DebugCommands.Value()`); without it the CLI answers "unknown flag: --event-log".
      PULUMI_DEBUG_COMMANDS: 'true',
    };
  }

  /** `pulumi ARGS --stack STACK`; resolves with its stdout when it exits 0, otherwise rejects with its output. */
  ok(args: string[], { cwd = this.dir, timeoutMs = 120_000, stdinFile }: CallOptions & { stdinFile?: string } = {}): Promise<string> {
    return runPulumiOk([...args, '--stack', this.stack], { cwd, env: this.env, stdinFile, timeoutMs });
  }

  /** Runs a project command (`npm run …`) in the project folder with this stack's CLI environment; resolves with its output. */
  script(command: string, args: string[], timeoutMs = 300_000): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile(command, args, { cwd: this.dir, env: this.env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`)) : resolve(stdout + stderr),
      ),
    );
  }

  /** `pulumi stack init` on the file backend (the stack file Pulumi.<stack>.yaml appears with the first `config set`). */
  async init(): Promise<void> {
    await this.ok(['stack', 'init']);
  }

  /** `pulumi config set [--path] KEY VALUE` for each key, in order, as the READMEs tell users. */
  async configSet(
    values: Record<string, string | number>,
    { cwd, path: byPath = false }: { cwd?: string; path?: boolean } = {},
  ): Promise<void> {
    for (const [key, value] of Object.entries(values))
      await this.ok(['config', 'set', ...(byPath ? ['--path'] : []), key, String(value)], { cwd });
  }

  /** `pulumi config set --secret KEY < FILE`: the value never on a command line. */
  async configSetSecret(key: string, file: string, options: CallOptions = {}): Promise<void> {
    await this.ok(['config', 'set', '--secret', key], { ...options, stdinFile: file });
  }

  /** The stack's settings file in `cwd`. */
  configFile(cwd = this.dir): string {
    return path.join(cwd, `Pulumi.${this.stack}.yaml`);
  }

  /** `pulumi up --yes --skip-preview --event-log FILE [extra]`: what the engine did. */
  up(extra: string[] = [], options: CallOptions = {}): Promise<CliSummary> {
    return this.withEvents(['up', '--yes', '--skip-preview', ...extra], options);
  }

  /** `pulumi destroy --yes --skip-preview --event-log FILE`. */
  destroy(options: CallOptions = {}): Promise<CliSummary> {
    return this.withEvents(['destroy', '--yes', '--skip-preview'], options);
  }

  private async withEvents(args: string[], { cwd, timeoutMs = 600_000 }: CallOptions): Promise<CliSummary> {
    const file = path.join(this.root, `events-${++this.eventLogs}.jsonl`);
    const startedAt = Date.now();
    const output = await this.ok([...args, '--event-log', file], { cwd, timeoutMs });
    const endedAt = Date.now();
    const events = readStepEvents(file);
    const ops = (op: string) => events.filter((e) => e.kind === 'pre' && e.op === op).map((e) => e.key);
    return {
      created: ops('create'),
      replaced: ops('replace'),
      updated: ops('update'),
      deleted: ops('delete'),
      same: ops('same'),
      steps: events.filter((e) => e.kind === 'pre' && !['same', 'replace', 'read'].includes(e.op)).map((e) => `${e.op} ${e.key}`),
      events,
      startedAt,
      endedAt,
      output,
    };
  }

  /** The stack outputs (`pulumi stack output --json --show-secrets`) and which of them are secrets (shown as "[secret]" without it). */
  async outputs(): Promise<{ values: Record<string, unknown>; secrets: string[] }> {
    const values = JSON.parse(await this.ok(['stack', 'output', '--json', '--show-secrets'])) as Record<string, unknown>;
    const masked = JSON.parse(await this.ok(['stack', 'output', '--json'])) as Record<string, unknown>;
    return { values, secrets: Object.keys(masked).filter((k) => masked[k] === '[secret]') };
  }

  /** The resources of the stack's state (`pulumi stack export --show-secrets`), secrets unwrapped. */
  async state(): Promise<StateResource[]> {
    const exported = JSON.parse(await this.ok(['stack', 'export', '--show-secrets'])) as {
      deployment: { resources?: Array<Record<string, unknown>> };
    };
    return (exported.deployment.resources ?? []).map((r) => ({
      urn: r.urn as string,
      type: r.type as string,
      custom: r.custom === true,
      id: r.id as string | undefined,
      name: nameOf(r.urn as string),
      inputs: unwrapSecrets(r.inputs ?? {}) as Record<string, unknown>,
      outputs: unwrapSecrets(r.outputs ?? {}) as Record<string, unknown>,
      // A provider reference is `URN::ID`.
      providerName: typeof r.provider === 'string' ? nameOf(r.provider.replace(/::[^:]*$/, '')) : '',
    }));
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** The step events of an `--event-log` file (one JSON engine event a line), in sequence order. */
export function readStepEvents(file: string): StepEvent[] {
  const events: StepEvent[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as {
      sequence: number;
      resourcePreEvent?: { metadata: Metadata; planning?: boolean };
      resOutputsEvent?: { metadata: Metadata; planning?: boolean };
      resOpFailedEvent?: { metadata: Metadata };
    };
    const [kind, body] = event.resourcePreEvent
      ? (['pre', event.resourcePreEvent] as const)
      : event.resOutputsEvent
        ? (['outputs', event.resOutputsEvent] as const)
        : event.resOpFailedEvent
          ? (['failed', event.resOpFailedEvent] as const)
          : [undefined, undefined];
    if (!kind || ('planning' in body && body.planning)) continue;
    const { op, urn, type } = body.metadata;
    if (type === 'pulumi:pulumi:Stack' || type.startsWith('pulumi:providers:')) continue;
    events.push({ sequence: event.sequence, kind, op, key: keyOf(type, urn), urn, oldInputs: body.metadata.old?.inputs });
  }
  return events.sort((a, b) => a.sequence - b.sequence);
}

interface Metadata {
  op: string;
  urn: string;
  type: string;
  old?: { inputs?: Record<string, unknown> };
}

/**
 * The stack's containers that were removed between `since` and `until` (epoch ms), with how each stopped, from
 * the Docker engine's own events: `kill` (with the signal), `die` (with the exit code), `destroy`. `dockerCli`
 * runs the docker CLI against the engine to ask (the host's by default; a VM's in the VM test).
 */
export async function removedContainers(
  label: string,
  since: number,
  until: number,
  dockerCli: (args: string[]) => Promise<string> = docker,
): Promise<RemovedContainer[]> {
  const lines = await dockerCli([
    'events',
    '--since',
    (since / 1000).toFixed(3),
    '--until',
    (until / 1000 + 1).toFixed(3),
    '--filter',
    'type=container',
    '--filter',
    `label=${label}`,
    '--format',
    '{{json .}}',
  ]);
  type DockerEvent = { Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number };
  const events = lines
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DockerEvent);
  const removed: RemovedContainer[] = [];
  for (const destroyed of events.filter((e) => e.Action === 'destroy')) {
    const mine = events.filter((e) => e.Actor.ID === destroyed.Actor.ID && e.timeNano <= destroyed.timeNano);
    const kills = mine.filter((e) => e.Action === 'kill');
    const die = mine.filter((e) => e.Action === 'die').pop();
    const firstKill = kills[0];
    removed.push({
      name: destroyed.Actor.Attributes.name,
      exitCode: die ? Number(die.Actor.Attributes.exitCode) : undefined,
      stopMs: firstKill && die ? Math.round((die.timeNano - firstKill.timeNano) / 1e6) : 0,
      killed: kills.some((k) => k.Actor.Attributes.signal === '9' || k.Actor.Attributes.signal === 'SIGKILL'),
      destroyedAt: Math.round(destroyed.timeNano / 1e6),
    });
  }
  return removed;
}
