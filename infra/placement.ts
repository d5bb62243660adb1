// Which VM runs which replica. Replica n goes to the VMs with the `replicas` role round-robin by its
// number, in the order of the `vms` list: the rule looks at n only, never at the count, so raising or
// lowering `replicas` adds or removes the highest-numbered replicas and leaves the others where they are.
// (Adding or removing a replicas VM, or reordering the list, does move replicas.)
import type { VmConfig } from './config';

/** The VM of replica `index` (1-based). */
export function replicaVm(index: number, vms: readonly VmConfig[]): VmConfig {
  const hosts = vms.filter((vm) => vm.roles.includes('replicas'));
  if (hosts.length === 0) throw new Error('no VM has the role replicas');
  return hosts[(index - 1) % hosts.length];
}

/** Replica numbers 1..count grouped by the VM that runs them; every replicas VM is present, maybe with none. */
export function placeReplicas(count: number, vms: readonly VmConfig[]): Map<string, number[]> {
  const placed = new Map<string, number[]>(vms.filter((vm) => vm.roles.includes('replicas')).map((vm) => [vm.name, []]));
  for (let index = 1; index <= count; index++) placed.get(replicaVm(index, vms).name)!.push(index);
  return placed;
}
