// What each input of command:local:Command and command:remote:Command does in pulumi-command v1.2.1, and the
// file of provider/pkg/provider/ it is read from. Check (known inputs, types, defaults, secrets) and Diff (what
// a change does) follow this table and nothing else. pulumi-command is built on pulumi-go-provider v1.3.0's
// `infer`: its default Diff replaces on a `replaceOnChanges` field and updates on any other changed input (the
// Command types implement Update), and its default Check refuses an unrecognised input.

/** The shape Check accepts for an input. */
export type InputType =
  'string' | 'strings' | 'list' | 'stringMap' | 'boolean' | 'integer' | 'number' | 'logging' | 'connection' | 'object';

export interface InputBehaviour {
  type: InputType;
  /** What a changed value does: `replace` (create the new, then delete the old) or `update` (runs `update`, else `create`). */
  change: 'replace' | 'update';
  /** What the provider does with it. */
  effect: string;
  /** The file in pulumi-command v1.2.1 provider/pkg/provider/ that says so. */
  source: string;
  /** Why the stand-in refuses it in Check; absent = implemented. */
  refused?: string;
  /** `provider:"secret"`: Check marks the whole value secret (pulumi-go-provider infer/apply_secrets.go). */
  secret?: true;
  required?: true;
  default?: number | string;
}

export type BehaviourTable = Readonly<Record<string, InputBehaviour>>;

const UPDATE = 'update' as const;

/** ResourceInputs, shared by both Command types. */
const COMMON: BehaviourTable = {
  triggers: {
    type: 'list',
    change: 'replace',
    effect: 'only compared: a change replaces the resource (create runs for the new one, delete for the old)',
    source: 'common/inputs.go',
  },
  create: { type: 'string', change: UPDATE, effect: 'run at create; also at update when `update` is unset', source: 'common/inputs.go' },
  update: { type: 'string', change: UPDATE, effect: 'run at update instead of `create`', source: 'common/inputs.go' },
  delete: {
    type: 'string',
    change: UPDATE,
    effect: "run at delete (also of a replaced resource), with the state's environment and last stdout/stderr",
    source: 'common/inputs.go',
  },
};

const ADD_PREVIOUS_OUTPUT = "unless false, PULUMI_COMMAND_STDOUT/STDERR carry the last stdout/stderr into update and delete (when not '')";
const LOGGING = 'which of stdout/stderr are shown while the command runs; outputs always hold both';

export const LOCAL_COMMAND: BehaviourTable = {
  ...COMMON,
  stdin: {
    type: 'string',
    change: UPDATE,
    effect: "written to the command's standard input when not ''",
    source: 'local/commandOutputs.go',
  },
  logging: { type: 'logging', change: UPDATE, effect: LOGGING, source: 'local/logging.go' },
  interpreter: {
    type: 'strings',
    change: UPDATE,
    effect: 'the program and arguments the command is appended to; default /bin/sh -c',
    source: 'local/commandOutputs.go',
  },
  dir: {
    type: 'string',
    change: UPDATE,
    effect: "the working directory; default the provider's (the project directory)",
    source: 'local/commandOutputs.go',
  },
  environment: {
    type: 'stringMap',
    change: UPDATE,
    effect: "added to the provider's own environment; a secret value stays secret in the output of the same name",
    source: 'local/commandOutputs.go',
  },
  addPreviousOutputInEnv: { type: 'boolean', change: UPDATE, effect: ADD_PREVIOUS_OUTPUT, source: 'local/commandOutputs.go' },
  assetPaths: {
    type: 'strings',
    change: UPDATE,
    effect: 'globs read into the `assets` output after the command',
    source: 'local/commandOutputs.go',
    refused: 'assets are not produced by the stand-in',
  },
  archivePaths: {
    type: 'strings',
    change: UPDATE,
    effect: 'globs packed into the `archive` output after the command',
    source: 'local/commandOutputs.go',
    refused: 'archives are not produced by the stand-in',
  },
};

export const REMOTE_COMMAND: BehaviourTable = {
  ...COMMON,
  connection: {
    type: 'connection',
    change: UPDATE,
    effect: 'where and how to dial (CONNECTION below); secret in inputs and outputs',
    source: 'remote/command.go',
    secret: true,
    required: true,
  },
  stdin: { type: 'string', change: UPDATE, effect: "the session's standard input when not ''", source: 'remote/commandOutputs.go' },
  logging: { type: 'logging', change: UPDATE, effect: LOGGING, source: 'remote/logging.go' },
  environment: {
    type: 'stringMap',
    change: UPDATE,
    effect: 'session.Setenv each; a refusal (no AcceptEnv in sshd) fails the command',
    source: 'remote/commandOutputs.go',
    refused: "OpenSSH's client cannot tell whether sshd accepted a variable, so it cannot fail as the provider does",
  },
  addPreviousOutputInEnv: {
    type: 'boolean',
    change: UPDATE,
    effect: `${ADD_PREVIOUS_OUTPUT}; through session.Setenv, a refusal only warns`,
    source: 'remote/commandOutputs.go',
  },
};

/** remote.Command's `connection` (connectionBase and Connection): the SSH client of remote/connection.go. */
export const CONNECTION: BehaviourTable = {
  host: { type: 'string', change: UPDATE, effect: 'the address dialled', source: 'remote/connection.go', required: true },
  port: { type: 'number', change: UPDATE, effect: 'the port dialled', source: 'remote/connection.go', default: 22 },
  user: { type: 'string', change: UPDATE, effect: 'the login user', source: 'remote/connection.go', default: 'root' },
  privateKey: {
    type: 'string',
    change: UPDATE,
    effect: 'a signer from it; the agent at SSH_AUTH_SOCK is offered too when set; no ~/.ssh key is ever read',
    source: 'remote/connection.go',
    secret: true,
  },
  hostKey: {
    type: 'string',
    change: UPDATE,
    effect: "the only host key accepted (authorized_keys format); without it the server's key is not checked",
    source: 'remote/connection.go',
  },
  perDialTimeout: {
    type: 'integer',
    change: UPDATE,
    effect: 'seconds each dial may take; 0 = no limit',
    source: 'remote/connection.go',
    default: 15,
  },
  dialErrorLimit: {
    type: 'integer',
    change: UPDATE,
    effect: 'failed dials (connect, handshake or auth) before giving up, retried 100 ms apart growing 1.5x to 5 s; -1 = no limit',
    source: 'remote/connection.go',
    default: 10,
  },
  password: {
    type: 'string',
    change: UPDATE,
    effect: 'password and keyboard-interactive auth',
    source: 'remote/connection.go',
    secret: true,
    refused: 'OpenSSH takes no password from an argument',
  },
  privateKeyPassword: {
    type: 'string',
    change: UPDATE,
    effect: 'decrypts privateKey',
    source: 'remote/connection.go',
    secret: true,
    refused: 'OpenSSH takes no passphrase from an argument',
  },
  agentSocketPath: {
    type: 'string',
    change: UPDATE,
    effect: 'the agent socket instead of SSH_AUTH_SOCK',
    source: 'remote/connection_unix.go',
    refused: 'not used by this project',
  },
  proxy: {
    type: 'object',
    change: UPDATE,
    effect: 'dial through a bastion host',
    source: 'remote/proxyConnection.go',
    refused: 'not used by this project',
  },
};
