// The READMEs' VM configuration, typed as users type it, through the real Pulumi CLI (built by `npm run tools`)
// and scripts/stack.sh, in a scratch copy of the project (the example stack file copied, the secrets set by
// command): what the CLI then hands the program (`pulumi config --json --show-secrets`, which merges
// Pulumi.yaml's defaults as `pulumi up` does) must pass infra/config.ts.
// Before, both READMEs' layouts were refused at the first `pulumi up`: one gave no VM the broker or activity
// role, and every VM stack got Pulumi.yaml's bindAddress default, which the program refuses with vms.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { CONFIG_NAMESPACE, parseConfig } from '../../infra/config';
import { REPO_ROOT } from '../helpers/record-stack';
import { scratchCopy } from '../helpers/scratch-copy';
import { pulumiCliEnv, requireBuiltCli } from '../helpers/pulumi-cli';

/** The `sh` block of a README's VM section, which starts from the example stack file, as written, without the deploy (`npm run up`). */
function vmConfigBlock(readme: string): string {
  const text = fs.readFileSync(path.join(REPO_ROOT, readme), 'utf8');
  const block = /```sh\n(cp examples\/Pulumi\.vms\.yaml [\s\S]*?)```/.exec(text);
  if (!block) throw new Error(`${readme}: no sh block starting with the copy of examples/Pulumi.vms.yaml`);
  return block[1]
    .split('\n')
    .filter((line) => !/^npm run up\b/.test(line))
    .map((line) => line.replace(/\s*&& npm run up.*$/, ''))
    .join('\n');
}

for (const readme of ['README.md', 'infra/README.md']) {
  test(`${readme}'s VM layout, set with the real CLI, is what the program accepts`, (t) => {
    requireBuiltCli();
    const copy = scratchCopy('cnp-cli-config-');
    t.teardown(() => copy.remove());
    const home = path.join(copy.dir, '.home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true });
    const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(home, '.ssh', 'id_ed25519')], {
      encoding: 'utf8',
    });
    t.is(keygen.status, 0, keygen.stderr);
    const env = { ...pulumiCliEnv(home), HOME: home };

    const set = spawnSync('bash', ['-euo', 'pipefail', '-c', vmConfigBlock(readme)], {
      cwd: copy.dir,
      env,
      encoding: 'utf8',
      timeout: 90_000,
    });
    t.is(set.status, 0, `${set.stdout}\n${set.stderr}`);

    const shown = spawnSync('npm', ['run', '-s', 'pulumi', '--', 'config', '--json', '--show-secrets'], {
      cwd: copy.dir,
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    t.is(shown.status, 0, shown.stderr);
    const entries = JSON.parse(shown.stdout) as Record<string, { value?: string; secret: boolean }>;
    const prefix = `${CONFIG_NAMESPACE}:`;
    const raw: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [key, entry] of Object.entries(entries)) {
      if (!key.startsWith(prefix) || entry.value === undefined) continue;
      raw[key.slice(prefix.length)] = entry.value;
      if (entry.secret) secretKeys.push(key.slice(prefix.length));
    }
    // The CLI merged Pulumi.yaml's defaults: replicas came from the block, the ports from the project file.
    t.is(raw.balancerPort, '8080');
    const config = parseConfig(raw, CONFIG_NAMESPACE, secretKeys);
    t.deepEqual(
      config.vms.map((vm) => [vm.name, vm.roles.slice().sort()]),
      [
        ['vm1', ['balancer', 'discovery']],
        ['vm2', ['activity', 'broker', 'collector', 'replicas']],
        ['vm3', ['activity', 'replicas']],
      ],
    );
    t.is(config.replicas, 4);
    t.true(secretKeys.includes('sshPrivateKey'), 'the key is kept as a secret');
  });
}
