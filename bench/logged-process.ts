import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Managed } from '../test/helpers/processes';

const running = new Set<Managed>();
process.on('exit', () => {
  for (const p of running) p.child.kill('SIGKILL');
});

/**
 * Like the test helpers' startProcess, but stdout and stderr go to a file rather than through a pipe
 * into the benchmark: the processes under test log a line per request, and reading those on the load
 * generator's core would bill the load side for their logging.
 */
export function startLoggedProcess(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Managed {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.on('error', (error) => {
      fs.appendFileSync(logFile, String(error));
      resolve('spawn-error');
    });
  });
  const managed: Managed = {
    child,
    output: () => {
      try {
        return fs.readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
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
