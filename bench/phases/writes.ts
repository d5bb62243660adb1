import type { ConsulAgent } from '../../harness/consul';
import { waitFor } from '../../harness/processes';
import { seedUsers } from '../seed-users';
import { startReplica } from '../../harness/service';
import { pinProcess } from '../pinning';

/** The service name of the users written here: a prefix of its own in the run's Consul. */
const SERVICE = 'writes-bench';
/** Clients writing at once (closed loop). */
const CLIENTS = 4;

export interface WriteStep {
  users: number;
  /** Seconds the seeding of this step's new users took (transactions of 64). */
  seedSec: number;
  /** Writes per second (create, update, delete in turn), on a replica that has not listed yet, and right after one list request. */
  beforeListPerSec: number;
  afterListPerSec: number;
  /** Writes not answered 2xx, over both runs. */
  failed: number;
}

/** `seconds` of CLIENTS loops of create → update → delete on one replica; writes per second. */
async function writeRate(url: string, seconds: number): Promise<{ perSec: number; failed: number }> {
  let done = 0;
  let failed = 0;
  const end = performance.now() + seconds * 1000;
  const send = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    done++;
    if (!res?.ok) failed++;
    return res?.ok ? res : undefined;
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; performance.now() < end; i++) {
        const created = await send('POST', '/api/users', { name: `W${c}-${i}`, email: `w${c}-${i}@example.com` });
        if (!created) continue;
        const { id } = (await created.json()) as { id: string };
        await send('PUT', `/api/users/${id}`, { name: `W${c}-${i}b`, email: `w${c}-${i}b@example.com` });
        await send('DELETE', `/api/users/${id}`);
      }
    }),
  );
  return { perSec: done / ((performance.now() - started) / 1000), failed };
}

/**
 * Writes per second with `sizes` users stored (the broker up, so the relay empties the outbox): at each
 * size the users are seeded up to it straight into KV (bench/seed-users.ts), then a fresh hello replica
 * (pinned to the test core) takes `seconds` of writes before any list request, one `GET /api/users?limit=1`
 * (which fills its key-listing cache, the case where a write once re-sorted every id), and `seconds` more.
 */
export async function measureWriteRates(consul: ConsulAgent, testCpu: number | undefined, sizes: number[], seconds: number) {
  const steps: WriteStep[] = [];
  let seeded = 0;
  for (const users of sizes) {
    const seedStarted = performance.now();
    await seedUsers(consul, SERVICE, users - seeded);
    seeded = users;
    const seedSec = (performance.now() - seedStarted) / 1000;
    const replica = await startReplica(consul, SERVICE, `${SERVICE}-${users}`);
    try {
      pinProcess(replica.child.pid!, testCpu);
      await waitFor(`${replica.id} to answer`, async () => (await fetch(`${replica.url}/health`)).ok, 15_000, 50);
      const before = await writeRate(replica.url, seconds);
      // The key listing of 100,000 users (about 6 MB) can outlast the replica's 3 s Consul timeout on a busy machine.
      await waitFor(
        `GET /api/users?limit=1 with ${users} users to answer 200`,
        async () => (await fetch(`${replica.url}/api/users?limit=1`, { signal: AbortSignal.timeout(10_000) })).ok,
        60_000,
        500,
      );
      const after = await writeRate(replica.url, seconds);
      steps.push({ users, seedSec, beforeListPerSec: before.perSec, afterListPerSec: after.perSec, failed: before.failed + after.failed });
    } finally {
      await replica.stop(3000);
    }
  }
  return steps;
}
