// The real Pulumi CLI (.tools/pulumi/bin, built by scripts/pulumi-tools.sh) on a scratch TypeScript program in
// a temporary folder, offline: its own PULUMI_HOME and file backend, the stand-in plugins first on PATH.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './record-stack';
import { fileBackendEnv, runPulumi, runPulumiOk, type CliResult } from './pulumi-cli';

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
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const tsconfig = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, include: ['index.ts'], exclude: ['node_modules'] }));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, main: 'index.ts' }));
  fs.writeFileSync(path.join(dir, 'Pulumi.yaml'), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`);
  fs.copyFileSync(sourceFile, path.join(dir, 'index.ts'));
  const env = fileBackendEnv(root, 'x');
  const pulumi = (args: string[], timeoutMs = 120_000) => runPulumi(args, { cwd: dir, env, timeoutMs });
  const ok = (args: string[], timeoutMs = 120_000) => runPulumiOk(args, { cwd: dir, env, timeoutMs });
  await ok(['stack', 'init', 'dev']);
  return { dir, pulumi, ok, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}
