import path from 'node:path';
import { run } from './docker';

export const PROJECT_DIR = path.resolve(__dirname, '../..');
export const BASE_IMAGE = 'cnp-base:bookworm';
export const CONSUL_IMAGE = 'cnp-consul:1.8.7';
/** The broker's offline base (scripts/nats-image.sh), the stack's natsImage in the system tests. */
export const NATS_IMAGE = 'cnp-nats:2.9';

/** Builds the offline base images if their inputs changed (a cached run takes well under a second). */
export async function ensureOfflineImages(): Promise<string> {
  const bases = await run('bash', [path.join(PROJECT_DIR, 'scripts/images.sh')], { timeoutMs: 600_000 });
  return bases + (await run('bash', [path.join(PROJECT_DIR, 'scripts/nats-image.sh')], { timeoutMs: 600_000 }));
}
