// Pure translation of recorded @pulumi/command inputs into what the realizer runs; the docker inputs'
// translation is the docker provider stand-in's (harness/plugins/docker/plans.ts), re-exported here.
import path from 'node:path';
import { remoteConnection, type RemoteConnection } from '../../harness/plugins/command/ssh';
import { DeclaredInputs, type Inputs } from '../../harness/plugins/docker/plans';

export * from '../../harness/plugins/docker/plans';

export interface CommandPlan {
  kind: 'command';
  name: string;
  create?: string;
  delete?: string;
  dir: string;
  env: Record<string, string>;
  interpreter: string[];
}

/** @pulumi/command local.Command: its create runs in its dir with its environment; delete runs at removal. */
export function planCommand(resourceName: string, values: Inputs, projectDir: string): CommandPlan {
  const d = new DeclaredInputs(values, `command:local:Command "${resourceName}"`);
  const plan: CommandPlan = {
    kind: 'command',
    name: resourceName,
    create: d.get<string>('create'),
    delete: d.get<string>('delete'),
    dir: path.resolve(projectDir, d.get<string>('dir') ?? '.'),
    env: d.get<Record<string, string>>('environment') ?? {},
    interpreter: d.get<string[]>('interpreter') ?? ['/bin/sh', '-c'],
  };
  d.get('triggers'); // a change of triggers replaces the command: diff.ts (its local.Command and remote.Command rules)
  d.get('logging'); // only what the CLI displays
  d.get('addPreviousOutputInEnv'); // only affects update/delete scripts' environment
  d.done();
  return plan;
}


export interface RemoteCommandPlan {
  kind: 'remote-command';
  name: string;
  create?: string;
  update?: string;
  delete?: string;
  stdin?: string;
  connection: RemoteConnection;
}

/**
 * @pulumi/command remote.Command: `create` runs on the host its `connection` names, `update` (or else
 * `create`) on an update, `delete` at removal. The connection's defaults are the command stand-in's
 * (harness/plugins/command/ssh.ts, remoteConnection).
 */
export function planRemoteCommand(resourceName: string, values: Inputs): RemoteCommandPlan {
  const d = new DeclaredInputs(values, `command:remote:Command "${resourceName}"`);
  const c = d.nested('connection');
  if (!c) throw new Error(`realizer: ${d.where} has no connection`);
  const host = c.get<string>('host');
  if (!host) throw new Error(`realizer: ${c.where} has no host`);
  const connection = remoteConnection({
    host,
    port: c.get<number>('port'),
    user: c.get<string>('user'),
    privateKey: c.get<string>('privateKey'),
    hostKey: c.get<string>('hostKey'),
    perDialTimeout: c.get<number>('perDialTimeout'),
    dialErrorLimit: c.get<number>('dialErrorLimit'),
  });
  // password, privateKeyPassword, agentSocketPath and proxy are not emulated: done() refuses them.
  c.done();
  const plan: RemoteCommandPlan = {
    kind: 'remote-command',
    name: resourceName,
    create: d.get<string>('create'),
    update: d.get<string>('update'),
    delete: d.get<string>('delete'),
    stdin: d.get<string>('stdin'),
    connection,
  };
  d.get('triggers'); // a change of triggers replaces the command (diff.ts)
  d.get('logging'); // only what the CLI displays
  // PULUMI_COMMAND_STDOUT/STDERR go through session.Setenv, which sshd refuses without AcceptEnv (the
  // provider then only warns): with no AcceptEnv on the VMs, nothing reaches the command either way.
  d.get('addPreviousOutputInEnv');
  // `environment` is not read: its Setenv failing is an error in the provider, so it is refused here.
  d.done();
  return plan;
}
