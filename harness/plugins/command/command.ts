// The lifecycle both Command types share (pulumi-command v1.2.1 local/commandController.go and
// remote/commandController.go, through pulumi-go-provider v1.3.0 infer/resource.go): what runs at create,
// update and delete, what the state holds, and which inputs a change replaces (behaviour.ts).
import { randomBytes } from 'node:crypto';
import { nameOfUrn, type Props, type ResourceHandlers } from '../provider-server';
import type { BehaviourTable } from './behaviour';
import { checkInputs, diffInputs, reveal, secret } from './inputs';

export interface Outputs {
  stdout: string;
  stderr: string;
}

/** Runs one of the resource's commands with its (checked, plain) inputs; `previous` is the last create/update's output. */
export type CommandRunner = (command: string, inputs: Props, previous: Outputs, timeoutMs: number) => Promise<Outputs>;

const NO_OUTPUT: Outputs = { stdout: '', stderr: '' };

/** The id the provider gives: the resource name and 8 random hex digits (resource.NewUniqueHex(name, 8, 0)). */
function commandId(urn: string): string {
  return `${nameOfUrn(urn)}${randomBytes(4).toString('hex')}`;
}

function previousOutputs(state: Props): Outputs {
  return { stdout: typeof state.stdout === 'string' ? state.stdout : '', stderr: typeof state.stderr === 'string' ? state.stderr : '' };
}

export function commandResource(what: string, table: BehaviourTable, run: CommandRunner): ResourceHandlers {
  const inputsOf = (props: Props): Props => Object.fromEntries(Object.entries(reveal(props) as Props).filter(([key]) => key in table));
  // The state is the inputs beside stdout and stderr; an input marked `provider:"secret"` stays secret there.
  const state = (inputs: Props, outputs: Outputs): Props => {
    const marked = Object.fromEntries(Object.entries(inputs).map(([key, value]) => [key, table[key]?.secret ? secret(value) : value]));
    return { ...marked, ...outputs };
  };
  return {
    check: (news) => checkInputs(table, news, what),
    diff: (_id, olds, news) => diffInputs(table, olds, news),
    async create(news, timeoutSeconds, urn) {
      const inputs = inputsOf(news);
      const outputs = typeof inputs.create === 'string' ? await run(inputs.create, inputs, NO_OUTPUT, timeoutSeconds * 1000) : NO_OUTPUT;
      return { id: commandId(urn), outs: state(inputs, outputs) };
    },
    // No Read of its own: the state is returned as it is, so a refresh changes nothing.
    read: (id, props, inputs) => Promise.resolve({ id, props, inputs }),
    async update(_id, olds, news, timeoutSeconds) {
      const inputs = inputsOf(news);
      const previous = previousOutputs(olds);
      const command = inputs.update ?? inputs.create;
      const outputs = typeof command === 'string' ? await run(command, inputs, previous, timeoutSeconds * 1000) : previous;
      return state(inputs, outputs);
    },
    async delete(_id, props, timeoutSeconds) {
      const inputs = inputsOf(props);
      if (typeof inputs.delete === 'string') await run(inputs.delete, inputs, previousOutputs(props), timeoutSeconds * 1000);
    },
  };
}

/** PULUMI_COMMAND_STDOUT/STDERR for the next run, unless addPreviousOutputInEnv is false; an empty one is not set. */
export function previousOutputEnv(inputs: Props, previous: Outputs): Record<string, string> {
  if (inputs.addPreviousOutputInEnv === false) return {};
  return {
    ...(previous.stdout !== '' ? { PULUMI_COMMAND_STDOUT: previous.stdout } : {}),
    ...(previous.stderr !== '' ? { PULUMI_COMMAND_STDERR: previous.stderr } : {}),
  };
}
