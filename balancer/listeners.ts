// Which of nginx's old workers still accept connections, read from Linux's /proc. After a graceful
// reload an old worker keeps accepting until it handles its shutdown signal; until then a new
// connection can still meet the old config (for example the 503 one that had no upstream).
import { promises as fs } from 'node:fs';

async function socketInodes(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  await Promise.all(
    fds.map(async (fd) => {
      const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match) inodes.add(match[1]);
    }),
  );
  return inodes;
}

/** Inodes of every TCP socket in LISTEN state in this network namespace. */
async function listeningInodes(): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A') inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** The direct children of `parentPid` (nginx's workers when it is the master). */
export async function childPids(parentPid: number): Promise<number[]> {
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  const children: number[] = [];
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
        // Field 4 (ppid) follows the command name in parentheses, which may itself hold spaces.
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === parentPid) children.push(Number(name));
      }),
  );
  return children;
}

/** Of `workers`, those still holding one of the master's listening sockets (so still accepting). */
export async function workersStillListening(masterPid: number, workers: readonly number[]): Promise<number[]> {
  const listening = await listeningInodes();
  const masterListeners = [...(await socketInodes(masterPid))].filter((inode) => listening.has(inode));
  if (masterListeners.length === 0) return [];
  const still: number[] = [];
  for (const pid of workers) {
    const held = await socketInodes(pid);
    if (masterListeners.some((inode) => held.has(inode))) still.push(pid);
  }
  return still;
}
