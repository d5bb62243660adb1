import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/**
 * Where the benchmark runs what. On two or more cores the load side (load generator, the benchmark's
 * own polling and request loops) gets one core and the processes under test (Consul, replicas, the
 * watcher and its nginx) another, so that a comparison measures the balancer, not the scheduler.
 */
export interface CpuPlan {
  cores: number;
  /** CPU for the load side, or undefined when not pinned. */
  loadCpu?: number;
  /** CPU for the processes under test, or undefined when not pinned. */
  testCpu?: number;
  description: string;
}

/** CPUs this process may run on, from a list such as "0-3,6" in /proc/self/status. */
function allowedCpus(): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return list.split(',').flatMap((range) => {
    const [from, to = from] = range.split('-').map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
}

export function planCpus(): CpuPlan {
  const cores = os.cpus().length;
  const allowed = allowedCpus();
  if (allowed.length < 2) {
    return { cores, description: `not pinned: only CPU ${allowed.join(',')} available, everything shares it` };
  }
  const [loadCpu, testCpu] = allowed;
  return {
    cores,
    loadCpu,
    testCpu,
    description:
      `taskset: load generator (autocannon in its own process), request loops and pollers on CPU ${loadCpu}; ` +
      `Consul, service replicas, balancer watcher and its nginx on CPU ${testCpu}`,
  };
}

/** The command line that runs `command args` on `cpu` (taskset sets the affinity, then execs). */
export function pinnedCommand(cpu: number | undefined, command: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [command, args] : ['taskset', ['--cpu-list', String(cpu), command, ...args]];
}

/** Moves an already running process, all its threads included, to `cpu`. */
export function pinProcess(pid: number, cpu: number | undefined): void {
  if (cpu === undefined) return;
  execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** The CPUs a process may run on, as taskset prints them (for the record in the results). */
export function affinityOf(pid: number): string {
  try {
    return (
      execFileSync('taskset', ['--cpu-list', '--pid', String(pid)])
        .toString()
        .trim()
        .split(': ')
        .pop() ?? '?'
    );
  } catch {
    return '?';
  }
}
