// The program loads through the same TypeScript path the Pulumi CLI uses (ts-node with type checking,
// CommonJS per tsconfig.json), not only through tsx as the other tests load it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { REPO_ROOT } from '../helpers/record-stack';

const LOADER = path.join(REPO_ROOT, 'test', 'helpers', 'load-like-pulumi.cjs');

test("the entry in Pulumi.yaml runs under the language host's ts-node registration", (t) => {
  const result = spawnSync(process.execPath, [LOADER, JSON.stringify({ replicas: 2 })], {
    encoding: 'utf8',
    timeout: 60_000,
    // Plain node: no tsx loader inherited from ava's worker.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as { tsNode: string; outputs: Record<string, unknown> };
  t.regex(report.tsNode, /ts-node/);
  t.deepEqual(report.outputs.replicaNames, ['cnp-dev-replica-1', 'cnp-dev-replica-2']);
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
