// Full listings of the engine's containers, networks and volumes (anonymous ones too), to show that a
// tear-down leaves the engine as it found it.
import { docker } from './docker';

export interface DockerListing {
  containers: string[];
  networks: string[];
  volumes: string[];
}

const lines = (text: string) => text.split('\n').filter(Boolean).sort();

export async function listDocker(): Promise<DockerListing> {
  const [containers, networks, volumes] = await Promise.all([
    docker(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}}']),
    docker(['network', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Name}}']),
    docker(['volume', 'ls', '--format', '{{.Name}}']),
  ]);
  return { containers: lines(containers), networks: lines(networks), volumes: lines(volumes) };
}

export interface ListingChange {
  kind: keyof DockerListing;
  entry: string;
  change: 'added' | 'removed';
}

export function compareListings(before: DockerListing, after: DockerListing): ListingChange[] {
  const changes: ListingChange[] = [];
  for (const kind of ['containers', 'networks', 'volumes'] as const) {
    const was = new Set(before[kind]);
    const is = new Set(after[kind]);
    for (const entry of is) if (!was.has(entry)) changes.push({ kind, entry, change: 'added' });
    for (const entry of was) if (!is.has(entry)) changes.push({ kind, entry, change: 'removed' });
  }
  return changes;
}
