// command:local:Command: the command runs on this machine (pulumi-command v1.2.1 local/commandOutputs.go, run).
import type { Props } from '../provider-server';
import { LOCAL_COMMAND } from './behaviour';
import { commandResource, previousOutputEnv, type Outputs } from './command';
import { runProcess, trimOutput } from './process';

/** How Go's os/exec names the signals a command is usually ended by (syscall.Signal.String). */
const GO_SIGNAL_NAMES: Record<string, string> = { SIGKILL: 'killed', SIGTERM: 'terminated', SIGINT: 'interrupt' };

async function runLocal(command: string, inputs: Props, previous: Outputs, timeoutMs: number): Promise<Outputs> {
  const interpreter =
    Array.isArray(inputs.interpreter) && inputs.interpreter.length > 0 ? (inputs.interpreter as string[]) : ['/bin/sh', '-c'];
  const env = {
    ...process.env,
    ...((inputs.environment as Record<string, string> | undefined) ?? {}),
    ...previousOutputEnv(inputs, previous),
  };
  // Without `dir`, the provider's working directory: the engine starts plugins in the project's directory.
  const cwd = typeof inputs.dir === 'string' ? inputs.dir : process.cwd();
  const result = await runProcess([...interpreter, command], { cwd, env, stdin: inputs.stdin as string | undefined, timeoutMs });
  if (result.code !== 0) {
    const status = result.code === null ? `signal: ${GO_SIGNAL_NAMES[result.signal ?? ''] ?? result.signal}` : `exit status ${result.code}`;
    throw new Error(`${status}: running ${JSON.stringify(command)}:\n${result.combined}`);
  }
  return { stdout: trimOutput(result.stdout), stderr: trimOutput(result.stderr) };
}

export const localCommand = commandResource('command:local:Command', LOCAL_COMMAND, runLocal);
