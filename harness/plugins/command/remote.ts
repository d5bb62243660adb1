// command:remote:Command: the command runs in an SSH session on the connection's host (pulumi-command v1.2.1
// remote/commandOutputs.go, run), through OpenSSH told the provider's client rules (ssh.ts).
import type { Props } from '../provider-server';
import { REMOTE_COMMAND } from './behaviour';
import { commandResource, previousOutputEnv, type Outputs } from './command';
import { trimOutput } from './process';
import { remoteConnection, remoteFailure, runOverSsh, type ConnectionInputs } from './ssh';

async function runRemote(command: string, inputs: Props, previous: Outputs, timeoutMs: number): Promise<Outputs> {
  const connection = remoteConnection(inputs.connection as ConnectionInputs);
  const result = await runOverSsh(connection, command, {
    stdin: inputs.stdin as string | undefined,
    env: previousOutputEnv(inputs, previous),
    timeoutMs,
    onRetry: (attempt, limit) => console.error(`Dial ${attempt}/${limit === -1 ? 'inf' : limit} failed: retrying`),
  });
  if (result.code !== 0) throw remoteFailure(result, command);
  return { stdout: trimOutput(result.stdout), stderr: trimOutput(result.stderr) };
}

export const remoteCommand = commandResource('command:remote:Command', REMOTE_COMMAND, runRemote);
