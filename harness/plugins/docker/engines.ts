// Which Docker engine a docker provider's calls go to, and how the docker CLI reaches it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Semaphore, type Engine } from './cli';
import { shellQuote, type ProviderPlan } from './plans';

/** Docker CLI calls (one ssh session each) in flight to one remote engine at a time. */
const SESSIONS_PER_ENGINE = 6;

export const LOCAL_ENGINE: Engine = { label: 'local' };

/** The first `ssh` on PATH that is not one of our wrappers. */
function realSsh(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'ssh');
    if (dir.includes('cnp-ssh-') || !fs.existsSync(candidate)) continue;
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not executable: keep looking
    }
  }
  throw new Error('docker: no ssh client on PATH (Debian: apt-get install openssh-client)');
}

/**
 * Engines by provider. An ssh:// provider gets the docker CLI with `-H` and, first on its PATH, an `ssh`
 * wrapper that puts the provider's sshOpts before the arguments the CLI's connection helper passes.
 * That is exactly the command line the provider runs: pulumi-docker provider/image.go
 * (configureDockerClient) and the bridged kreuzwerker provider both call docker/cli's
 * connhelper.GetConnectionHelperWithSSHOpts(host, sshOpts) (cli/connhelper/connhelper.go), which runs
 * `ssh <sshOpts> [-o ConnectTimeout=30] -T -l USER -p PORT -- HOST docker system dial-stdio`; the CLI's
 * own `-H ssh://` uses the same helper with no sshOpts, and has no flag for them, hence the wrapper. The
 * real ssh still reads ~/.ssh/config and known_hosts, as the provider's does.
 */
export class Engines {
  /** Made with the first wrapper: a plugin that reaches no remote engine leaves nothing in /tmp. */
  private dir?: string;
  private readonly byKey = new Map<string, Engine>();

  forProvider(provider: ProviderPlan | undefined): Engine {
    if (!provider?.host) return LOCAL_ENGINE;
    const key = JSON.stringify([provider.host, provider.sshOpts]);
    const known = this.byKey.get(key);
    if (known) return known;
    const engine: Engine = { label: provider.name, host: provider.host, sessions: new Semaphore(SESSIONS_PER_ENGINE) };
    if (provider.host.startsWith('ssh://') && provider.sshOpts.length > 0) {
      this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-ssh-'));
      const bin = fs.mkdtempSync(path.join(this.dir, 'bin-'));
      const script = [
        '#!/bin/sh',
        `# sshOpts of the docker provider "${provider.name}", before the connection helper's arguments.`,
        `exec ${shellQuote(realSsh())} ${provider.sshOpts.map(shellQuote).join(' ')} "$@"`,
        '',
      ].join('\n');
      fs.writeFileSync(path.join(bin, 'ssh'), script, { mode: 0o755 });
      engine.env = { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
    }
    this.byKey.set(key, engine);
    return engine;
  }

  /** Removes the wrappers. */
  close(): void {
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    this.byKey.clear();
  }
}
