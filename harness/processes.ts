import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { inspect } from 'node:util';
import path from 'node:path';

/**
 * Throws, naming the program, when `command` is not an executable on PATH: a test that needs a server
 * the machine lacks fails at once with its name instead of timing out (or being skipped).
 */
export function requireOnPath(command: string): void {
  if (command.includes('/')) return;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return;
    } catch {
      // not in this directory
    }
  }
  throw new Error(
    `${command} is not installed (not on PATH); the tests need it: scripts/provision.sh installs consul, nginx, haproxy, syslog-ng, nats-server and docker`,
  );
}

export interface Managed {
  child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr), for assertions and failure reports. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<number | string>;
}

const running = new Set<Managed>();

/**
 * Spawns a process that is killed when the test process exits, even after a failed test. Its output
 * is collected through pipes, or, with `logFile`, written straight to that file (so that a benchmark's
 * own process does not spend CPU reading a line per request).
 */
export function startProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  {
    logFile,
    detached = false,
    cwd,
  }: {
    logFile?: string;
    /** a process group of its own, as a terminal's foreground job */
    detached?: boolean;
    /** its working directory (default: this process's) */
    cwd?: string;
  } = {},
): Managed {
  requireOnPath(command);
  let out = '';
  let child: ChildProcess;
  if (logFile) {
    const fd = fs.openSync(logFile, 'a');
    child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd], detached, cwd });
    fs.closeSync(fd);
  } else {
    child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached, cwd });
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  }
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.on('error', (error) => {
      out += String(error);
      resolve('spawn-error');
    });
  });
  const managed: Managed = {
    child,
    output: () => (logFile ? readIfExists(logFile) : '') + out,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
  running.add(managed);
  void exited.then(() => running.delete(managed));
  return managed;
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Stops every process this test file started and has not stopped yet. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(2000)));
}

process.on('exit', () => {
  for (const p of running) p.child.kill('SIGKILL');
});

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; then throws naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${inspect(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
