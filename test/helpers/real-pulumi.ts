// The real Pulumi CLI (.tools/pulumi/bin, built by scripts/pulumi-tools.sh) on a scratch TypeScript program in
// a temporary folder, offline: its own PULUMI_HOME and file backend, the stand-in plugins first on PATH.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './record-stack';
import { pulumiCliEnv, requireBuiltCli } from '../../harness/pulumi-cli';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ScratchProgram {
  /** The program's folder. */
  dir: string;
  /** Runs `pulumi <args>` in the program's folder; killed with its plugins after `timeoutMs`. */
  pulumi(args: string[], timeoutMs?: number): Promise<CliResult>;
  /** Like `pulumi`, but rejects with the CLI's output unless it exits 0. */
  ok(args: string[], timeoutMs?: number): Promise<string>;
  remove(): void;
}

/** A program of one `index.ts` (a copy of `sourceFile`) with the repo's tsconfig and node_modules, and a stack `dev` on a file backend. */
export async function scratchProgram(name: string, sourceFile: string): Promise<ScratchProgram> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `cnp-${name}-`));
  const dir = path.join(root, 'program');
  fs.mkdirSync(dir);
  fs.mkdirSync(path.join(root, 'state'));
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const tsconfig = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, include: ['index.ts'], exclude: ['node_modules'] }));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, main: 'index.ts' }));
  fs.writeFileSync(path.join(dir, 'Pulumi.yaml'), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`);
  fs.copyFileSync(sourceFile, path.join(dir, 'index.ts'));
  const cli = requireBuiltCli();
  const env: NodeJS.ProcessEnv = {
    ...pulumiCliEnv(root),
    PULUMI_BACKEND_URL: `file://${path.join(root, 'state')}`,
    PULUMI_CONFIG_PASSPHRASE: 'x',
  };
  const pulumi = (args: string[], timeoutMs = 120_000): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      // Its own process group: on a timeout the CLI, its language host and its plugins all go.
      const child = spawn(cli, ['--non-interactive', ...args], { cwd: dir, env, detached: true });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
      child.on('error', (error) => (clearTimeout(timer), reject(error)));
      child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
    });
  const ok = async (args: string[], timeoutMs?: number): Promise<string> => {
    const result = await pulumi(args, timeoutMs);
    if (result.code !== 0) throw new Error(`pulumi ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  };
  await ok(['stack', 'init', 'dev']);
  return { dir, pulumi, ok, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}
