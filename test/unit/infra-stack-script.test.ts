// scripts/stack.sh (npm run up / destroy) without a Pulumi CLI: it must say so and how to install it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { REPO_ROOT } from '../helpers/record-stack';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'stack.sh');

/** A PATH holding only the tools the script needs before it looks for pulumi. */
function pathWithoutPulumi(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-path-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const tool of ['bash', 'dirname', 'cat']) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    fs.symlinkSync(found, path.join(dir, tool));
  }
  return dir;
}

for (const action of ['up', 'destroy']) {
  test(`npm run ${action} without the pulumi CLI fails with how to install it`, (t) => {
    const result = spawnSync('bash', [SCRIPT, action], {
      encoding: 'utf8',
      env: { PATH: pathWithoutPulumi(t), HOME: os.tmpdir() },
      timeout: 10_000,
    });
    t.is(result.status, 127);
    t.regex(result.stderr, /Pulumi CLI \(`pulumi`\) is not on PATH/);
    t.regex(result.stderr, /get\.pulumi\.com/);
  });
}

test('an unknown action prints the usage', (t) => {
  const result = spawnSync('bash', [SCRIPT, 'deploy'], { encoding: 'utf8', timeout: 10_000 });
  t.is(result.status, 2);
  t.regex(result.stderr, /usage: scripts\/stack\.sh up\|destroy/);
});
