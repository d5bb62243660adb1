// One stack of the project driven through the real Pulumi CLI (.tools/pulumi/bin, `npm run tools`), offline,
// with the provider stand-ins first on PATH (harness/pulumi-cli.ts): config set as the READMEs tell users,
// `up` / `destroy` with the engine's event log (what each step did), the state as `pulumi stack export`
// has it and the outputs as `pulumi stack output` gives them.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pulumiCliEnv, requireBuiltCli } from '../../harness/pulumi-cli';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** What one `up` or `destroy` did, by the engine's event log: resource names (the URN's last part) per op. */
export interface StepSummary {
  created: string[];
  updated: string[];
  replaced: string[];
  deleted: string[];
  same: string[];
  /** Every (op, URN) the log has, for messages. */
  steps: Array<{ op: string; urn: string; type: string }>;
}

/** A resource of the stack's state (`pulumi stack export --show-secrets`), secrets unwrapped. */
export interface StateResource {
  urn: string;
  /** The URN's last part: the resource's name in the program. */
  name: string;
  type: string;
  custom: boolean;
  id?: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** The name of its provider resource (e.g. vm2-docker), '' for a default provider. */
  providerName: string;
}

/** The secret envelope of the state (sdk/go/common/resource/sig): `plaintext` holds the value as JSON. */
const SECRET_SIG = '4dabf18193072939515e22adb298388d';

function unwrap(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrap);
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if (object[SECRET_SIG] === '1b47061264138c4ac30d75fd1eb44270' && typeof object.plaintext === 'string')
      return unwrap(JSON.parse(object.plaintext));
    return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unwrap(v)]));
  }
  return value;
}

const nameOf = (urn: string) => urn.split('::').pop() ?? urn;

export class CliStack {
  /** The file backend and the event logs, in a temporary folder of their own, `cnp-cli-state-<stack>-*`. */
  readonly stateDir: string;
  readonly env: NodeJS.ProcessEnv;
  private readonly cli = requireBuiltCli();
  private logs = 0;

  /** `dir` holds the project (Pulumi.yaml); the CLI gets a PULUMI_HOME of its own in `stateDir`. */
  constructor(
    readonly dir: string,
    readonly stack: string,
    passphrase: string,
  ) {
    this.stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `cnp-cli-state-${stack}-`));
    this.env = {
      ...pulumiCliEnv(this.stateDir),
      PULUMI_BACKEND_URL: `file://${this.stateDir}`,
      PULUMI_CONFIG_PASSPHRASE: passphrase,
      // `--event-log` exists only with it (pkg/cmd/pulumi/operations/up.go, destroy.go: env.DebugCommands).
      PULUMI_DEBUG_COMMANDS: 'true',
    };
  }

  /** `pulumi <args> --stack <stack>` in the project; stdin from `stdinFile` if given; killed with its plugins after `timeoutMs`. */
  run(args: string[], options: { stdinFile?: string; timeoutMs?: number; stack?: boolean } = {}): Promise<CliResult> {
    const { stdinFile, timeoutMs = 120_000, stack = true } = options;
    return new Promise((resolve, reject) => {
      const stdin = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore';
      // Its own process group: on a timeout the CLI, its language host and its plugins all go.
      const child = spawn(this.cli, ['--non-interactive', ...args, ...(stack ? ['--stack', this.stack] : [])], {
        cwd: this.dir,
        env: this.env,
        detached: true,
        stdio: [stdin, 'pipe', 'pipe'],
      });
      if (typeof stdin === 'number') fs.closeSync(stdin);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
      child.on('error', (error) => (clearTimeout(timer), reject(error)));
      child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
    });
  }

  /** Like `run`, but rejects with the CLI's output (its tail) unless it exits 0. */
  async ok(args: string[], options: { stdinFile?: string; timeoutMs?: number; stack?: boolean } = {}): Promise<string> {
    const result = await this.run(args, options);
    if (result.code !== 0)
      throw new Error(`pulumi ${args.join(' ')} exited ${result.code}:\n${result.stdout.slice(-6000)}\n${result.stderr.slice(-4000)}`);
    return result.stdout;
  }

  init(): Promise<string> {
    return this.ok(['stack', 'init', this.stack], { stack: false });
  }

  /** `pulumi up --yes --skip-preview <extra>` with an event log; the steps it took. */
  async up(extra: string[] = [], timeoutMs = 600_000): Promise<StepSummary> {
    return this.withEventLog(['up', '--yes', '--skip-preview', ...extra], timeoutMs);
  }

  async destroy(timeoutMs = 300_000): Promise<StepSummary> {
    return this.withEventLog(['destroy', '--yes', '--skip-preview'], timeoutMs);
  }

  private async withEventLog(args: string[], timeoutMs: number): Promise<StepSummary> {
    const log = path.join(this.stateDir, `events-${++this.logs}.jsonl`);
    await this.ok([...args, '--event-log', log], { timeoutMs });
    return summarize(fs.readFileSync(log, 'utf8'));
  }

  /** The state's resources, secrets shown and unwrapped. */
  async state(): Promise<StateResource[]> {
    const exported = JSON.parse(await this.ok(['stack', 'export', '--show-secrets'])) as {
      deployment: { resources?: Array<Record<string, unknown>> };
    };
    return (exported.deployment.resources ?? []).map((r) => ({
      urn: r.urn as string,
      name: nameOf(r.urn as string),
      type: r.type as string,
      custom: r.custom === true,
      id: r.id as string | undefined,
      inputs: unwrap(r.inputs ?? {}) as Record<string, unknown>,
      outputs: unwrap(r.outputs ?? {}) as Record<string, unknown>,
      providerName: typeof r.provider === 'string' ? nameOf(r.provider.replace(/::[^:]*$/, '')) : '',
    }));
  }

  /** The stack outputs (`--show-secrets`) and which of them are secrets (shown as "[secret]" without it). */
  async outputs(): Promise<{ values: Record<string, unknown>; secrets: string[] }> {
    const values = JSON.parse(await this.ok(['stack', 'output', '--json', '--show-secrets'])) as Record<string, unknown>;
    const masked = JSON.parse(await this.ok(['stack', 'output', '--json'])) as Record<string, unknown>;
    return { values, secrets: Object.keys(masked).filter((k) => masked[k] === '[secret]') };
  }

  remove(): void {
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/**
 * The engine's event log (JSON lines of apitype.EngineEvent): each step's `resOutputsEvent` (done) carries
 * StepEventMetadata `op` and `urn` (sdk/go/common/apitype/events.go). A replacement is reported as the ops
 * create-replacement, replace and delete-replaced (or delete-replaced first with deleteBeforeReplace).
 */
export function summarize(log: string): StepSummary {
  const steps: StepSummary['steps'] = [];
  for (const line of log.split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as { resOutputsEvent?: { metadata: { op: string; urn: string; type: string } } };
    const meta = event.resOutputsEvent?.metadata;
    if (meta) steps.push({ op: meta.op, urn: meta.urn, type: meta.type });
  }
  const names = (...ops: string[]) => [...new Set(steps.filter((s) => ops.includes(s.op)).map((s) => nameOf(s.urn)))].sort();
  return {
    created: names('create'),
    updated: names('update'),
    replaced: names('replace', 'create-replacement', 'delete-replaced'),
    deleted: names('delete'),
    same: names('same'),
    steps,
  };
}
