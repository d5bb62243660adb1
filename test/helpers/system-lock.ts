// One system test file at a time. Each deploys a whole stack (the VM test three Docker-in-Docker VMs); two
// at once on a two-core machine slowed single requests past the 2 s that counts as a failed one. ava runs
// two files at once (package.json), so unit and integration files go on beside the one holding the lock.
// The lock is a directory (mkdir is atomic) holding its owner's pid, so a killed run's lock is seen as stale.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const LOCK_DIR = path.join(os.tmpdir(), 'cnp-system-test.lock');
const PID_FILE = path.join(LOCK_DIR, 'pid');
/** How long a system test file waits for the others: the three together take about 15 minutes. */
export const SYSTEM_LOCK_WAIT_MS = 30 * 60_000;
/** A lock with no pid written this long after it was made belongs to a process killed in between. */
const UNWRITTEN_STALE_MS = 10_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function stale(): boolean {
  try {
    const pid = Number(fs.readFileSync(PID_FILE, 'utf8'));
    return Number.isInteger(pid) && pid > 0 && !alive(pid);
  } catch {
    try {
      return Date.now() - fs.statSync(LOCK_DIR).mtimeMs > UNWRITTEN_STALE_MS;
    } catch {
      return false; // released meanwhile
    }
  }
}

/** Waits (at most `maxWaitMs`) until no other system test file runs; resolves with the release. */
export async function holdSystemLock(maxWaitMs = SYSTEM_LOCK_WAIT_MS): Promise<() => void> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      fs.writeFileSync(PID_FILE, String(process.pid));
      const release = () => {
        process.off('exit', release);
        fs.rmSync(LOCK_DIR, { recursive: true, force: true });
      };
      process.on('exit', release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (stale()) fs.rmSync(LOCK_DIR, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`another system test file held ${LOCK_DIR} for over ${maxWaitMs / 1000} s`);
    else await sleep(500);
  }
}
