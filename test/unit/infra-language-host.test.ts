// The program loads the way the Pulumi CLI runs it: in the working directory the engine picks from
// Pulumi.yaml (pkg/engine/project.go), through the language host's ts-node with type checking and the
// project's tsconfig.json, not only through tsx from the repository root as the other tests load it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import fs from 'node:fs';
import { REPO_ROOT } from '../helpers/record-stack';
import { scratchCopy } from '../helpers/scratch-copy';

/** What test/helpers/load-like-pulumi.cjs prints: how the language host loaded the program, and its outputs. */
interface LoadReport {
  tsNode: string;
  pwd: string;
  tsconfigLoaded: boolean;
  outputs: { replicaNames: string[]; balancerUrl: string };
}

const LOADER = path.join(REPO_ROOT, 'test', 'helpers', 'load-like-pulumi.cjs');

test("the program runs in the engine's working directory with the project's tsconfig.json", (t) => {
  const result = spawnSync(process.execPath, [LOADER, JSON.stringify({ replicas: 2 })], {
    encoding: 'utf8',
    timeout: 60_000,
    // Plain node: no tsx loader inherited from ava's worker.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as LoadReport;
  t.regex(report.tsNode, /ts-node/);
  t.is(report.pwd, REPO_ROOT, 'no `main` in Pulumi.yaml: the engine runs the program in the project folder');
  t.true(report.tsconfigLoaded, 'the language host found tsconfig.json in its working directory');
  t.is(report.outputs.replicaNames.length, 2);
  for (const [i, name] of report.outputs.replicaNames.entries()) t.regex(name, new RegExp(`^cnp-dev-replica-${i + 1}-[0-9a-f]{12}$`));
  t.is(report.outputs.balancerUrl, 'http://127.0.0.1:8080');
});

test('a bad config value fails the run with the config error, not a TypeScript error', (t) => {
  const result = spawnSync(process.execPath, [LOADER, JSON.stringify({ replicas: 0 })], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.not(result.status, 0);
  t.regex(result.stderr, /consul-nginx-pulumi:replicas = "0" is not allowed: use a whole number from 1 to 20/);
  t.notRegex(result.stderr, /TSError/);
});

test('with `main: infra/index.ts` the engine would run the program in infra/, where ts-node finds no tsconfig.json', (t) => {
  const copy = scratchCopy();
  t.teardown(() => copy.remove());
  fs.appendFileSync(path.join(copy.dir, 'Pulumi.yaml'), 'main: infra/index.ts\n');
  const result = spawnSync(process.execPath, [LOADER, JSON.stringify({ replicas: 1 }), copy.dir], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as LoadReport;
  t.is(report.pwd, path.join(copy.dir, 'infra'));
  t.false(report.tsconfigLoaded);
});
