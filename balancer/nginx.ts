import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { childPids, listenerInodes, workersStillListening } from './listeners';
import type { Logger } from '../lib/logger';

export interface NginxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** nginx error-log severities mapped onto our log levels. */
function levelOf(line: string): 'info' | 'warn' | 'error' {
  const match = /\[(emerg|alert|crit|error|warn|notice|info|debug)\]/.exec(line);
  if (!match) return 'info';
  if (match[1] === 'warn') return 'warn';
  return ['emerg', 'alert', 'crit', 'error'].includes(match[1]) ? 'error' : 'info';
}

/** nginx's `-p` prefix for a work dir; also how an nginx started there is recognised in /proc. */
export function nginxPrefix(workDir: string): string {
  return workDir + '/';
}

/**
 * The admin listener's Unix socket in a work dir: the watcher's reload check and the container's health
 * check ask their own nginx there. Over TCP they could meet another balancer sharing the port (REUSE_PORT).
 */
export function adminSocketPath(workDir: string): string {
  return path.join(workDir, 'admin.sock');
}

/**
 * The nginx child: its config file (replaced atomically, only after `nginx -t` passed), its start,
 * graceful reload (SIGHUP) and graceful stop (SIGQUIT). Paths all live under `workDir`.
 */
export class Nginx {
  readonly confPath: string;
  private readonly candidatePath: string;
  private readonly pidPath: string;
  private readonly adminSocket: string;
  private child: ChildProcess | undefined;
  private exitPromise: Promise<NginxExit> | undefined;

  constructor(
    private readonly bin: string,
    readonly workDir: string,
    private readonly logger: Logger,
  ) {
    this.confPath = path.join(workDir, 'nginx.conf');
    this.candidatePath = path.join(workDir, 'nginx.candidate.conf');
    this.pidPath = path.join(workDir, 'nginx.pid');
    this.adminSocket = adminSocketPath(workDir);
  }

  private baseArgs(conf: string): string[] {
    // -e stderr: otherwise nginx opens its compiled-in /var/log/nginx/error.log before reading our config.
    return ['-e', 'stderr', '-p', nginxPrefix(this.workDir), '-c', conf];
  }

  /** Writes `text` as the candidate config; installCandidate() makes it the live one. */
  async writeCandidate(text: string): Promise<void> {
    await fs.writeFile(this.candidatePath, text, { mode: 0o644 });
  }

  /**
   * Writes `text` as the candidate and runs `nginx -t` on it; resolves to the error text, or null when valid.
   * While nginx does not run, the test binds and listens on the config's port for a moment (nginx opens the
   * listening sockets in test mode too): a client connecting then is accepted and reset.
   */
  async check(text: string): Promise<string | null> {
    await this.writeCandidate(text);
    return new Promise((resolve) => {
      // stdout is /dev/null, not a pipe: a config that logs to /dev/stdout must open it under the test
      // as it will under nginx itself (nginx cannot open a socket's /dev/stdout).
      const test = spawn(this.bin, ['-t', '-q', ...this.baseArgs(this.candidatePath)], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 10_000,
      });
      let stderr = '';
      test.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      test.on('error', (error) => resolve(error.message));
      test.on('close', (code, signal) => {
        if (code === 0) return resolve(null);
        const detail = stderr.trim() || `nginx -t exited with ${code ?? signal}`;
        resolve(detail.replace(/\s*\n\s*/g, ' | '));
      });
    });
  }

  /** Moves the checked candidate over the live config in one rename, so nginx never reads half a file. */
  async installCandidate(): Promise<void> {
    await fs.rename(this.candidatePath, this.confPath);
  }

  /** Starts nginx in the foreground; resolves once it has bound its port and handles signals. */
  async start(readyTimeoutMs = 10_000): Promise<void> {
    await fs.rm(this.pidPath, { force: true });
    // A socket file left by an nginx that was killed would make the bind fail.
    await fs.rm(this.adminSocket, { force: true });
    // A process group of its own: Ctrl-C in a terminal signals the whole foreground group, and nginx
    // taking SIGINT as a fast shutdown could exit before the watcher's handler ran, which then read it as
    // a crash (seen in CI). Only the watcher stops nginx, gracefully; a watcher killed outright leaves the
    // master for the next start to take over (workdir.ts).
    const child = spawn(this.bin, this.baseArgs(this.confPath), { stdio: ['ignore', 'inherit', 'pipe'], detached: true });
    this.child = child;
    const recent: string[] = [];
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      recent.push(line);
      if (recent.length > 20) recent.shift();
      this.logger[levelOf(line)]('nginx', { line });
    });
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
      child.on('error', (error) => {
        recent.push(String(error));
        resolve({ code: null, signal: null });
      });
    });
    let exited = false;
    void this.exitPromise.then(() => (exited = true));

    // nginx writes its pid file after it has bound the listen sockets and installed its signal handlers.
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (exited) throw new Error(`nginx exited during start: ${recent.join(' | ') || 'no output'}`);
      const pid = await fs.readFile(this.pidPath, 'utf8').catch(() => '');
      if (pid.trim() === String(child.pid)) return;
      if (Date.now() > deadline) throw new Error(`nginx did not become ready within ${readyTimeoutMs} ms: ${recent.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Resolves when the nginx child exits, however it happens. */
  exited(): Promise<NginxExit> {
    if (!this.exitPromise) throw new Error('nginx was not started');
    return this.exitPromise;
  }

  /**
   * Graceful reload: nginx starts workers on the new config and lets the old ones finish their
   * requests. Resolves once nginx answers with the new config's `generation` and none of the old
   * workers accepts connections any more.
   */
  async reload(generation: number, timeoutMs = 5000): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) {
      throw new Error('nginx is not running');
    }
    const masterPid = this.child.pid!;
    const oldWorkers = await childPids(masterPid);
    this.child.kill('SIGHUP');
    const deadline = Date.now() + timeoutMs;
    while ((await this.servedGeneration()) !== String(generation)) {
      if (Date.now() > deadline) throw new Error(`nginx did not serve the new config within ${timeoutMs} ms (see its log)`);
      await new Promise((r) => setTimeout(r, 5));
    }
    // Only once no old worker accepts any more does every new connection meet the new config.
    const listeners = await listenerInodes(masterPid);
    while ((await workersStillListening(listeners, oldWorkers)).length > 0) {
      if (Date.now() > deadline) throw new Error(`nginx's old workers still accepted connections ${timeoutMs} ms after the reload`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private servedGeneration(): Promise<string | null> {
    return new Promise((resolve) => {
      const req = http.get({ socketPath: this.adminSocket, path: '/_balancer/generation', agent: false, timeout: 1000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : null));
        res.on('error', () => resolve(null));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(null));
    });
  }

  /** Graceful stop (SIGQUIT lets requests in flight finish), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<NginxExit | undefined> {
    const child = this.child;
    if (!child || !this.exitPromise) return undefined;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const exit = await this.exitPromise;
      clearTimeout(timer);
      return exit;
    }
    return this.exitPromise;
  }
}
