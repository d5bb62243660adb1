// A stack of the project driven through the real Pulumi CLI (.tools/pulumi/bin, built by npm run tools), as a
// user drives it: `pulumi config set` into the stack's file, `pulumi up`, `pulumi stack output`, `pulumi destroy`,
// on a file backend of its own, offline, with the provider stand-ins of harness/plugins/bin on PATH. What a
// deploy did comes from the engine's own events (`pulumi up --event-log`), what the stack holds from its state
// (`pulumi stack export`), and how containers stopped from the Docker engine's events.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pulumiCliEnv, requireBuiltCli } from '../../harness/pulumi-cli';
import { docker } from './docker';

/** One step the engine reported, from `--event-log` (sdk/go/common/apitype/events.go). */
export interface StepEvent {
  sequence: number;
  /** resourcePreEvent: the step began; resOutputsEvent: it finished; resOpFailedEvent: it failed. */
  kind: 'pre' | 'outputs' | 'failed';
  op: string;
  /** `type::name`: the resource's type (without its parents' types) and name. */
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
  unchanged: string[];
  /** Every step that changed something, `op key`, in the order the engine began them (`same`/`replace` left out). */
  steps: string[];
  events: StepEvent[];
  /** Epoch ms: when the command was started and when it ended (for the Docker engine's events). */
  startedAt: number;
  endedAt: number;
  output: string;
}

/** A resource of the state (`pulumi stack export`). */
export interface StateResource {
  urn: string;
  type: string;
  id?: string;
  /** The resource's name (the URN's last part). */
  name: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
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
}

const keyOf = (type: string, urn: string) => `${type}::${urn.split('::').pop()}`;

export class CliStack {
  readonly root: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cli: string;
  private eventLogs = 0;

  /** `projectDir`: where the stack's file lives and the read-only commands (output, export) run. */
  constructor(
    readonly stack: string,
    readonly projectDir: string,
  ) {
    this.cli = requireBuiltCli();
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `cnp-${stack}-`));
    fs.mkdirSync(path.join(this.root, 'state'));
    this.env = {
      ...pulumiCliEnv(this.root),
      PULUMI_BACKEND_URL: `file://${path.join(this.root, 'state')}`,
      PULUMI_CONFIG_PASSPHRASE: `systest-${stack}`,
      // `--event-log` exists only with this set (pkg/cmd/pulumi/operations/up.go and destroy.go: the flag is
      // registered `if env.DebugCommands.Value()`); without it the CLI answers "unknown flag: --event-log".
      PULUMI_DEBUG_COMMANDS: 'true',
    };
  }

  /** Runs `pulumi ARGS --stack STACK` in `cwd`; rejects with its output unless it exits 0. */
  run(cwd: string, args: string[], timeoutMs = 600_000): Promise<string> {
    return new Promise((resolve, reject) => {
      // Its own process group: on a timeout the CLI, its language host and its plugins all go.
      const child = spawn(this.cli, ['--non-interactive', ...args, '--stack', this.stack], { cwd, env: this.env, detached: true });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, timeoutMs);
      child.on('error', (error) => (clearTimeout(timer), reject(error)));
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`pulumi ${args.join(' ')} (in ${cwd}) exited ${code}:\n${stdout.slice(-6000)}\n${stderr.slice(-4000)}`));
      });
    });
  }

  /** `pulumi stack init` on the file backend (the stack file Pulumi.<stack>.yaml appears with the first `config set`). */
  async init(): Promise<void> {
    await this.run(this.projectDir, ['stack', 'init'], 60_000);
  }

  /** `pulumi config set KEY VALUE` for each key, into the stack file in `cwd` (as the README tells users). */
  async configSet(cwd: string, values: Record<string, string | number>): Promise<void> {
    for (const [key, value] of Object.entries(values)) await this.run(cwd, ['config', 'set', key, String(value)]);
  }

  /** The stack's settings file in `cwd`. */
  configFile(cwd: string): string {
    return path.join(cwd, `Pulumi.${this.stack}.yaml`);
  }

  /** `pulumi up --yes --skip-preview --event-log FILE [extra]` in `cwd`: what the engine did. */
  up(cwd: string, extra: string[] = []): Promise<CliSummary> {
    return this.withEvents(cwd, ['up', '--yes', '--skip-preview', ...extra]);
  }

  /** `pulumi destroy --yes --event-log FILE` in `cwd`. */
  destroy(cwd: string): Promise<CliSummary> {
    return this.withEvents(cwd, ['destroy', '--yes', '--skip-preview']);
  }

  private async withEvents(cwd: string, args: string[]): Promise<CliSummary> {
    const file = path.join(this.root, `events-${++this.eventLogs}.jsonl`);
    const startedAt = Date.now();
    const output = await this.run(cwd, [...args, '--event-log', file]);
    const endedAt = Date.now();
    const events = readStepEvents(file);
    const ops = (op: string) => events.filter((e) => e.kind === 'pre' && e.op === op).map((e) => e.key);
    return {
      created: ops('create'),
      replaced: ops('replace'),
      updated: ops('update'),
      deleted: ops('delete'),
      unchanged: ops('same'),
      steps: events.filter((e) => e.kind === 'pre' && !['same', 'replace', 'read'].includes(e.op)).map((e) => `${e.op} ${e.key}`),
      events,
      startedAt,
      endedAt,
      output,
    };
  }

  /** `pulumi stack output --json` (with `--show-secrets`: secrets in clear). */
  async outputs(showSecrets: boolean): Promise<Record<string, unknown>> {
    return JSON.parse(
      await this.run(this.projectDir, ['stack', 'output', '--json', ...(showSecrets ? ['--show-secrets'] : [])], 60_000),
    ) as Record<string, unknown>;
  }

  /** The resources of the stack's state (`pulumi stack export --show-secrets`). */
  async state(): Promise<StateResource[]> {
    const exported = JSON.parse(await this.run(this.projectDir, ['stack', 'export', '--show-secrets'], 60_000)) as {
      deployment: {
        resources?: Array<{ urn: string; type: string; id?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }>;
      };
    };
    return (exported.deployment.resources ?? []).map((r) => ({
      urn: r.urn,
      type: r.type,
      id: r.id,
      name: r.urn.split('::').pop()!,
      inputs: r.inputs ?? {},
      outputs: r.outputs ?? {},
    }));
  }

  /** The stack's containers in the state: resource name, container name and id. */
  async containers(): Promise<Array<{ resourceName: string; name: string; id: string; urn: string }>> {
    return (await this.state())
      .filter((r) => r.type === 'docker:index/container:Container')
      .map((r) => ({ resourceName: r.name, name: String(r.outputs.name), id: r.id!, urn: r.urn }));
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
 * the Docker engine's own events: `kill` (with the signal), `die` (with the exit code), `destroy`.
 */
export async function removedContainers(label: string, since: number, until: number): Promise<RemovedContainer[]> {
  const lines = await docker([
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
    });
  }
  return removed;
}
