import { randomUUID } from 'node:crypto';
import type { ConsulAgent } from '../harness/consul';

/** Operations per transaction: Consul's cap on one /v1/txn (1.8 and current releases). */
const TXN_OPS = 64;

/**
 * Writes `count` users under `<service>/users/` as the service stores them (one key each, its JSON), 64 per
 * transaction, `parallel` transactions at a time (100,000 users are 1,563 transactions).
 */
export async function seedUsers(consul: ConsulAgent, service: string, count: number, parallel = 4): Promise<void> {
  let next = 0;
  const writer = async () => {
    while (next < count) {
      const first = next;
      next = Math.min(count, next + TXN_OPS);
      const now = new Date().toISOString();
      const operations = Array.from({ length: next - first }, (_, i) => {
        const id = randomUUID();
        const user = { id, name: `User ${first + i}`, email: `user${first + i}@example.com`, createdAt: now, updatedAt: now };
        return { KV: { Verb: 'set', Key: `${service}/users/${id}`, Value: Buffer.from(JSON.stringify(user)).toString('base64') } };
      });
      const res = await fetch(`${consul.httpAddr}/v1/txn`, {
        method: 'PUT',
        body: JSON.stringify(operations),
        headers: { 'X-Consul-Token': consul.managementToken },
        signal: AbortSignal.timeout(30_000),
      });
      if (!res.ok) throw new Error(`seeding users: /v1/txn answered ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, writer));
}
