import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

// Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat.
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** CPU time of the process itself (user + system), in microseconds. */
  cpuUs: number;
  /** CPU time of its children that have exited and been reaped, in microseconds. */
  reapedChildrenCpuUs: number;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm is in parentheses and may itself contain spaces or parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state) of proc(5): utime is field 14, stime 15, cutime 16, cstime 17.
  const tick = 1e6 / CLOCK_TICKS;
  return {
    pid,
    comm,
    ppid: Number(fields[1]),
    cpuUs: (Number(fields[11]) + Number(fields[12])) * tick,
    reapedChildrenCpuUs: (Number(fields[13]) + Number(fields[14])) * tick,
  };
}

/** Every live process, read once from /proc. */
export function processTable(): ProcStat[] {
  const table: ProcStat[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) table.push(stat);
  }
  return table;
}

/** Every live process whose parent is `pid` (from `table` when given, else from a fresh read of /proc). */
export function childrenOf(pid: number, table: readonly ProcStat[] = processTable()): ProcStat[] {
  return table.filter((p) => p.ppid === pid);
}

/** A "Name:   123 kB" line of a /proc file, in MB; NaN when the file or the line is missing. */
function kbFieldMB(file: string, name: string): number {
  try {
    const kb = Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(file, 'utf8'))?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in MB from /proc/<pid>/status (VmRSS), or NaN when the process is gone. */
export const rssMB = (pid: number): number => kbFieldMB(`/proc/${pid}/status`, 'VmRSS');

/** Proportional set size in MB (shared pages divided among sharers), or NaN when unavailable. */
export const pssMB = (pid: number): number => kbFieldMB(`/proc/${pid}/smaps_rollup`, 'Pss');

/**
 * Time one CPU has spent busy so far (user, nice, system, irq, softirq), in microseconds, from /proc/stat;
 * NaN when the CPU is not listed. Against the processes' own CPU time it shows how much of the core other
 * work took.
 */
export function cpuBusyUs(cpu: number): number {
  const line = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) return Number.NaN;
  const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq) * (1e6 / CLOCK_TICKS);
}
