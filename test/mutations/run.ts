// The mutation check (`npm run test:mutations`): breaks the product on purpose, one fault at a time, in a
// scratch copy of this checkout, and runs the tests that should notice. A fault is caught only when a
// test fails (ava reports it as `✘ [fail]`): a bundle that no longer builds, a run that times out or a
// search text that no longer matches is an error of the list, not a catch. Exit 0 only when every fault
// of the list is caught and the unbroken copy passes the same tests.
//
//   npm run test:mutations                       every fault, after a baseline run
//   npm run test:mutations -- --only ID[,ID]     some faults
//   npm run test:mutations -- --no-baseline      skip the baseline run of the unbroken copy
//   npm run test:mutations -- --keep             leave the scratch copy for a look
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAULTS, patchProblem, type Fault } from './faults';

const REPO = path.resolve(__dirname, '../..');
const DEFAULT_TIMEOUT_S = 300;

interface Options {
  only: string[];
  baseline: boolean;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { only: [], baseline: true, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--only') options.only.push(...(argv[++i] ?? '').split(',').filter(Boolean));
    else if (arg === '--no-baseline') options.baseline = false;
    else if (arg === '--keep') options.keep = true;
    else throw new Error(`unknown argument ${JSON.stringify(arg)}; allowed: --only ID[,ID], --no-baseline, --keep`);
  }
  const unknown = options.only.filter((id) => !FAULTS.some((f) => f.id === id));
  if (unknown.length) throw new Error(`--only names no fault: ${unknown.join(', ')}; known: ${FAULTS.map((f) => f.id).join(', ')}`);
  return options;
}

/** A copy of the checkout as it is now (tracked and untracked files, not the ignored ones), sharing node_modules. */
function makeScratch(): string {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-mutations-'));
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(REPO, file);
    if (!fs.existsSync(from)) continue; // deleted in the work tree
    fs.mkdirSync(path.dirname(path.join(scratch, file)), { recursive: true });
    fs.copyFileSync(from, path.join(scratch, file));
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(scratch, 'node_modules'));
  return scratch;
}

/** Runs a command in its own process group; on timeout the whole group (ava, its workers, the servers they started) is killed. */
function runCommand(cwd: string, command: string, args: string[], timeoutS: number, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; output: string; timedOut: boolean }>((resolve) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env, FORCE_COLOR: '0' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let timedOut = false;
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), 10_000).unref();
    }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      kill('SIGKILL'); // whatever the run left behind in its group
      resolve({ code, output, timedOut });
    });
  });
}

const build = (dir: string) => runCommand(dir, process.execPath, ['scripts/build.mjs'], 120);

function runTests(dir: string, files: string[], match: string[], timeoutS: number, env?: Record<string, string>) {
  const args = [path.join(dir, 'node_modules/ava/entrypoints/cli.mjs'), ...files, ...match.flatMap((m) => ['--match', m])];
  return runCommand(dir, process.execPath, args, timeoutS, env);
}

/** Titles of the tests ava reports as failed. */
function failedTests(output: string): string[] {
  return [...new Set([...output.matchAll(/✘ \[fail\]: (.+)/g)].map((m) => m[1].trim()))];
}

/** Applies the fault's patches; each search text must occur exactly once in its file. */
function applyPatches(dir: string, fault: Fault): string | null {
  for (const patch of fault.patches) {
    const problem = patchProblem(dir, patch);
    if (problem) return problem;
    const file = path.join(dir, patch.file);
    fs.writeFileSync(
      file,
      fs.readFileSync(file, 'utf8').replace(patch.search, () => patch.replace),
    );
  }
  return null;
}

function restore(dir: string, fault: Fault): void {
  for (const patch of fault.patches) fs.copyFileSync(path.join(REPO, patch.file), path.join(dir, patch.file));
}

interface Outcome {
  id: string;
  result: 'caught' | 'SURVIVED' | 'PATCH FAILED' | 'BUILD FAILED' | 'TIMED OUT';
  seconds: number;
  detail: string;
}

async function runFault(dir: string, fault: Fault): Promise<Outcome> {
  const started = Date.now();
  const done = (result: Outcome['result'], detail: string): Outcome => ({
    id: fault.id,
    result,
    seconds: (Date.now() - started) / 1000,
    detail,
  });
  // A fault that leaves the bundles stale builds them before it breaks the source, not after.
  if (fault.stale) {
    const built = await build(dir);
    if (built.code !== 0) return done('BUILD FAILED', built.output.trim().slice(-500));
  }
  const problem = applyPatches(dir, fault);
  try {
    if (problem) return done('PATCH FAILED', problem);
    if (!fault.stale) {
      const built = await build(dir);
      if (built.code !== 0) return done('BUILD FAILED', built.output.trim().slice(-500));
    }
    const run = await runTests(dir, fault.tests, fault.match ?? [], fault.timeoutS ?? DEFAULT_TIMEOUT_S, fault.env);
    const failed = failedTests(run.output);
    if (run.timedOut)
      return done('TIMED OUT', `after ${fault.timeoutS ?? DEFAULT_TIMEOUT_S} s; failed so far: ${failed.join(' | ') || 'none'}`);
    if (run.code !== 0 && failed.length > 0) return done('caught', failed.join(' | '));
    return done(
      'SURVIVED',
      run.code === 0 ? 'every test passed' : `ava exited ${run.code} with no failed test:\n${run.output.trim().slice(-800)}`,
    );
  } finally {
    restore(dir, fault);
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const faults = options.only.length ? FAULTS.filter((f) => options.only.includes(f.id)) : FAULTS;
  const started = Date.now();
  const scratch = makeScratch();
  console.log(`mutation check: ${faults.length} fault(s) in ${scratch}`);
  let ok: boolean;
  try {
    if (options.baseline) {
      const files = [...new Set(faults.flatMap((f) => f.tests))].sort();
      const built = await build(scratch);
      if (built.code !== 0) throw new Error(`the unbroken copy does not build:\n${built.output}`);
      const t0 = Date.now();
      const run = await runTests(scratch, files, [], 900);
      const seconds = ((Date.now() - t0) / 1000).toFixed(0);
      if (run.code !== 0) {
        console.log(run.output.trim().slice(-3000));
        throw new Error(
          `baseline: the unbroken copy fails its tests (${failedTests(run.output).join(' | ') || 'see above'}); a catch would mean nothing`,
        );
      }
      console.log(`baseline: ${files.length} test file(s) pass on the unbroken copy (${seconds} s)`);
    }
    const outcomes: Outcome[] = [];
    for (const fault of faults) {
      const outcome = await runFault(scratch, fault);
      outcomes.push(outcome);
      console.log(
        `${outcome.result.padEnd(12)} ${fault.id.padEnd(34)} ${outcome.seconds.toFixed(0).padStart(4)} s  ${outcome.detail.split('\n')[0].slice(0, 300)}`,
      );
      if (outcome.result !== 'caught' && outcome.detail.includes('\n')) console.log(outcome.detail);
    }
    const caught = outcomes.filter((o) => o.result === 'caught').length;
    ok = caught === outcomes.length;
    console.log(`\n${caught}/${outcomes.length} caught; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
    for (const o of outcomes.filter((x) => x.result !== 'caught')) console.log(`not caught: ${o.id} (${o.result})`);
  } finally {
    if (options.keep) console.log(`scratch copy kept in ${scratch}`);
    else fs.rmSync(scratch, { recursive: true, force: true });
  }
  process.exit(ok ? 0 : 1);
}

main().catch((error: unknown) => {
  console.error(`mutation check: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
