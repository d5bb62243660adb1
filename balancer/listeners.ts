// Which of nginx's old workers still accept connections, read from Linux's /proc. After a graceful
// reload an old worker keeps accepting until it handles its shutdown signal; until then a new
// connection can still meet the old config (for example the 503 one that had no upstream).
import { promises as fs } from 'node:fs';

async function socketInodes(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match) inodes.add(match[1]);
  }
  return inodes;
}

/**
 * Inodes of the listening sockets nginx's master holds: its sockets other than the Unix ones (the
 * channels to its workers). Unix sockets are few, whereas the TCP table of a busy host has a line
 * per TIME_WAIT connection, too much to read on every reload.
 */
export async function listenerInodes(masterPid: number): Promise<Set<string>> {
  const unix = new Set<string>();
  const text = await fs.readFile('/proc/net/unix', 'utf8').catch(() => '');
  for (const line of text.split('\n').slice(1)) {
    const inode = line.trim().split(/\s+/)[6];
    if (inode) unix.add(inode);
  }
  return new Set([...(await socketInodes(masterPid))].filter((inode) => !unix.has(inode)));
}

/** The direct children of `parentPid` (nginx's workers when it is the master). */
export async function childPids(parentPid: number): Promise<number[]> {
  const listed = await fs.readFile(`/proc/${parentPid}/task/${parentPid}/children`, 'utf8').catch(() => null);
  if (listed !== null) return listed.split(/\s+/).filter(Boolean).map(Number);
  // Kernels built without CONFIG_PROC_CHILDREN: find them by their parent pid.
  const children: number[] = [];
  for (const name of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Field 4 (ppid) follows the command name in parentheses, which may itself hold spaces.
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parentPid) children.push(Number(name));
  }
  return children;
}

/** Of `workers`, those still holding one of the `listeners` (so still accepting connections). */
export async function workersStillListening(listeners: ReadonlySet<string>, workers: readonly number[]): Promise<number[]> {
  const still: number[] = [];
  for (const pid of workers) {
    const held = await socketInodes(pid);
    if ([...listeners].some((inode) => held.has(inode))) still.push(pid);
  }
  return still;
}
