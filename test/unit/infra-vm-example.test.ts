// The example stack file for the course's three VMs (examples/Pulumi.vms.yaml), which the READMEs' VM sections
// start from, through the program's own config rules: its keys as the CLI hands them to the program (structured
// values as JSON, Pulumi.yaml's defaults merged: pkg/workspace/config.go mergeConfig) pass infra/config.ts, and
// the program declares the three VMs from it. The CLI's own reading of the file: test/integration/pulumi-cli-config.test.ts.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { CONFIG_NAMESPACE, parseConfig } from '../../infra/config';
import { projectDefaults, recordStack, REPO_ROOT } from '../helpers/record-stack';

const EXAMPLE_FILE = path.join(REPO_ROOT, 'examples', 'Pulumi.vms.yaml');

// js-yaml comes with @pulumi/pulumi and is declared in devDependencies; its types are not installed.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { load(text: string): unknown };

const file = yaml.load(fs.readFileSync(EXAMPLE_FILE, 'utf8')) as { config: Record<string, unknown> };
const prefix = `${CONFIG_NAMESPACE}:`;
/** The project's keys of the file, without the namespace, as the program gets them. */
const values = Object.fromEntries(
  Object.entries(file.config)
    .filter(([key]) => key.startsWith(prefix))
    .map(([key, value]) => [key.slice(prefix.length), value]),
) as Record<string, string | number | object>;
const asCliGives = (entries: Record<string, string | number | object>) =>
  Object.fromEntries(
    Object.entries(entries).map(([key, value]) => [key, typeof value === 'object' ? JSON.stringify(value) : String(value)]),
  );

test("the example stack file is the course's layout, with no secret in it, and the config rules take it", (t) => {
  const config = parseConfig(asCliGives({ ...projectDefaults(), ...values }));
  t.deepEqual(
    config.vms.map(
      (vm) => `${vm.name} ${vm.ssh.user}@${vm.ssh.host}:${vm.ssh.port} ${vm.privateAddress} ${vm.publicAddress} ${vm.roles.join('+')}`,
    ),
    [
      'vm1 root@203.0.113.11:22 10.0.0.11 203.0.113.11 discovery+balancer',
      'vm2 root@203.0.113.12:22 10.0.0.12 10.0.0.12 collector+replicas+broker+activity',
      'vm3 root@203.0.113.13:22 10.0.0.13 10.0.0.13 replicas+activity',
    ],
  );
  t.is(config.replicas, 4);
  t.is(config.sshPrivateKey, '', 'set by command, as a secret: without it the ssh-agent');
  t.deepEqual(Object.keys(values).sort(), ['replicas', 'vms'], 'no secret, nothing but the layout and the count');
  t.deepEqual(file.config['pulumi:disable-default-providers'], ['docker'], "as the project's own Pulumi.dev.yaml");
});

test('an edit the rules refuse is refused, naming the field: the test reads the file, not a copy of it', (t) => {
  const vms = (values.vms as Array<{ roles: string[] }>).map((vm, i) => (i === 2 ? { ...vm, roles: [...vm.roles, 'balancer'] } : vm));
  t.throws(() => parseConfig(asCliGives({ ...projectDefaults(), ...values, vms })), {
    message: /2 VMs have the role balancer; use exactly one/,
  });
});

test('the program declares the three VMs from it', async (t) => {
  const record = await recordStack({ config: values });
  t.deepEqual(
    record.resources.filter((r) => r.type === 'pulumi:providers:docker').map((p) => p.inputs.host),
    ['ssh://root@203.0.113.11:22', 'ssh://root@203.0.113.12:22', 'ssh://root@203.0.113.13:22'],
  );
  t.is(record.outputs.balancerUrl, 'http://203.0.113.11:8080');
});

test("both READMEs' VM sections start from it", (t) => {
  for (const readme of ['README.md', 'infra/README.md']) {
    const text = fs.readFileSync(path.join(REPO_ROOT, readme), 'utf8');
    t.true(text.includes('cp examples/Pulumi.vms.yaml Pulumi.dev.yaml'), readme);
  }
});
