// Taking over a WORK_DIR at start. A watcher that died without stopping its nginx (SIGKILL, or its
// launcher killed in a way no handler sees) leaves the nginx master running there, holding the listen
// port, so the next start could not bind. Such a master is found by its command line and stopped; one
// whose watcher is still alive belongs to that watcher and is left alone.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { childPids } from './listeners';
import type { Logger } from '../lib/logger';
import { nginxPrefix } from './nginx';

/** The watcher that owns the work dir writes its pid here. */
const WATCHER_PID_FILE = 'watcher.pid';

interface ProcessEntry {
  pid: number;
  ppid: number;
  state: string;
}

async function readStat(pid: number): Promise<ProcessEntry | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return undefined;
  // After the command name in parentheses (which may hold spaces): state, then ppid.
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(ppid), state };
}

/**
 * nginx masters started with this work dir as their prefix, found through /proc rather than the pid
 * file, which a failed start may already have removed. nginx rewrites its command line to
 * "nginx: master process <argv...>", and the watcher always passes `-p <workDir>/`.
 */
async function nginxMastersIn(workDir: string): Promise<ProcessEntry[]> {
  const prefixArg = ` -p ${nginxPrefix(workDir)} `;
  const masters: ProcessEntry[] = [];
  for (const name of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = (await fs.readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    if (!cmdline.startsWith('nginx: master process ') || !`${cmdline} `.includes(prefixArg)) continue;
    const entry = await readStat(Number(name));
    if (entry && entry.state !== 'Z') masters.push(entry);
  }
  return masters;
}

/** Gone, or a zombie waiting for its new parent to reap it (it holds no socket any more). */
async function isGone(pid: number): Promise<boolean> {
  const entry = await readStat(pid);
  return entry === undefined || entry.state === 'Z';
}

async function waitGone(pids: number[], deadline: number): Promise<boolean> {
  for (;;) {
    const alive = [];
    for (const pid of pids) if (!(await isGone(pid))) alive.push(pid);
    if (alive.length === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function signal(pid: number, name: NodeJS.Signals, workDir: string): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw new Error(
      `cannot stop the nginx (pid ${pid}) an earlier balancer left running in WORK_DIR=${workDir}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Makes `workDir` this watcher's: stops an nginx an earlier, dead watcher left running in it (graceful
 * SIGQUIT, SIGKILL to it and its workers after `graceMs`), refuses a work dir whose watcher still runs,
 * and records this watcher's pid.
 */
export async function claimWorkDir(workDir: string, logger: Logger, graceMs = 10_000): Promise<void> {
  const pidFile = path.join(workDir, WATCHER_PID_FILE);
  const owner = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim()) || undefined;
  for (const master of await nginxMastersIn(workDir)) {
    // nginx's parent is the watcher that started it until that watcher dies; then it is reparented.
    if (master.ppid === owner) {
      throw new Error(
        `WORK_DIR=${workDir} is in use by the running balancer with pid ${owner} (its nginx is pid ${master.pid}); stop that one or give this one another WORK_DIR`,
      );
    }
    logger.warn('stopping the nginx an earlier balancer left running in WORK_DIR', { pid: master.pid, workDir });
    const workers = await childPids(master.pid);
    signal(master.pid, 'SIGQUIT', workDir);
    if (!(await waitGone([master.pid], Date.now() + graceMs))) {
      for (const pid of [master.pid, ...workers]) signal(pid, 'SIGKILL', workDir);
      if (!(await waitGone([master.pid, ...workers], Date.now() + 5000))) {
        throw new Error(`the nginx (pid ${master.pid}) an earlier balancer left running in WORK_DIR=${workDir} did not stop`);
      }
    }
  }
  await fs.writeFile(pidFile, `${process.pid}\n`);
}
