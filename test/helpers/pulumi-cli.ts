// The real Pulumi CLI as tests and scripts run it here: the one `npm run tools` builds (scripts/pulumi-tools.sh),
// offline (no update check, no plugin download: a missing plugin is an error), with the provider stand-ins of
// harness/plugins/bin first on PATH, where the engine takes them for the docker and command plugins.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
export const BUILT_CLI = path.join(ROOT, '.tools', 'pulumi', 'bin', 'pulumi');
export const PLUGIN_STAND_INS = path.join(ROOT, 'harness', 'plugins', 'bin');

/** Throws, naming the command that builds it, when the CLI has not been built. */
export function requireBuiltCli(): string {
  if (!fs.existsSync(BUILT_CLI)) {
    throw new Error(`the real Pulumi CLI is not built (${BUILT_CLI} is missing): run npm run tools (scripts/pulumi-tools.sh)`);
  }
  return BUILT_CLI;
}

/**
 * The environment for the CLI: `home` holds its PULUMI_HOME. Without PULUMI_BACKEND_URL: scripts/stack.sh sets
 * the project's own; a direct call adds one, or uses fileBackendEnv.
 */
export function pulumiCliEnv(home: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${PLUGIN_STAND_INS}:${process.env.PATH ?? ''}`,
    PULUMI_HOME: path.join(home, '.pulumi-home'),
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
  };
}

/** The CLI's environment with PULUMI_HOME and a file backend (`root`/state, made here) of its own in `root`. */
export function fileBackendEnv(root: string, passphrase: string): NodeJS.ProcessEnv {
  const state = path.join(root, 'state');
  fs.mkdirSync(state, { recursive: true });
  return { ...pulumiCliEnv(root), PULUMI_BACKEND_URL: `file://${state}`, PULUMI_CONFIG_PASSPHRASE: passphrase };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Read as standard input (`pulumi config set --secret KEY < FILE`); without it, none. */
  stdinFile?: string;
  timeoutMs: number;
}

/** Runs `pulumi --non-interactive ARGS` to its end, whatever its exit code; killed with its plugins after `timeoutMs`. */
export function runPulumi(args: string[], { cwd, env, stdinFile, timeoutMs }: CliRunOptions): Promise<CliResult> {
  const cli = requireBuiltCli();
  return new Promise((resolve, reject) => {
    const stdin = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore';
    // Its own process group: on a timeout the CLI, its language host and its plugins all go.
    const child = spawn(cli, ['--non-interactive', ...args], { cwd, env, detached: true, stdio: [stdin, 'pipe', 'pipe'] });
    if (typeof stdin === 'number') fs.closeSync(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', (error) => (clearTimeout(timer), reject(error)));
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

/** Like runPulumi, but resolves with its stdout only when it exits 0; otherwise rejects with the tail of its output. */
export async function runPulumiOk(args: string[], options: CliRunOptions): Promise<string> {
  const result = await runPulumi(args, options);
  if (result.code !== 0) {
    throw new Error(
      `pulumi ${args.join(' ')} (in ${options.cwd}) exited ${result.code}:\n${result.stdout.slice(-6000)}\n${result.stderr.slice(-4000)}`,
    );
  }
  return result.stdout;
}
