// How the realizer reaches the engines the program's docker providers name, and the hosts its
// remote.Commands name: over ssh, as the real providers do, each through its own client's rules.
import { remoteFailure, runOverSsh, type RemoteConnection } from '../../harness/plugins/command/ssh';

export { Engines, LOCAL_ENGINE } from '../../harness/plugins/docker/engines';

/**
 * Runs one of a remote.Command's scripts on its host as the command stand-in does (harness/plugins/command/ssh.ts:
 * pulumi-command's SSH client rules told to OpenSSH, failed dials retried); resolves with its stdout.
 */
export async function runRemote(connection: RemoteConnection, script: string, stdin?: string, timeoutMs = 300_000): Promise<string> {
  const result = await runOverSsh(connection, script, { stdin, timeoutMs });
  if (result.code !== 0) throw remoteFailure(result, script);
  return result.stdout;
}
