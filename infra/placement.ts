// Which VM runs which replica. Replica n of a service goes to the VMs with that service's role (`replicas`
// for hello, `activity` for the activity service) round-robin by its number, in the order of the `vms`
// list: the rule looks at n only, never at the count, so raising or lowering a count adds or removes the
// highest-numbered replicas of that service and leaves the others where they are. (Adding or removing a
// VM of that role, or reordering the list, does move them.)
import type { VmRole } from './config';

/** What placement reads of a host: its name and roles (a VM's, or the one host's, which has every role). */
type Placed = { name: string; roles: readonly VmRole[] };

/** The roles whose VMs run a service's replicas. */
export type ReplicaRole = Extract<VmRole, 'replicas' | 'activity'>;

/** The VM of replica `index` (1-based) of the service whose VMs have `role`. */
export function replicaVm(index: number, vms: readonly Placed[], role: ReplicaRole = 'replicas'): Placed {
  const hosts = vms.filter((vm) => vm.roles.includes(role));
  if (hosts.length === 0) throw new Error(`no VM has the role ${role}`);
  return hosts[(index - 1) % hosts.length];
}

/** Replica numbers 1..count grouped by the VM that runs them; every VM of `role` is present, maybe with none. */
export function placeReplicas(count: number, vms: readonly Placed[], role: ReplicaRole = 'replicas'): Map<string, number[]> {
  const placed = new Map<string, number[]>(vms.filter((vm) => vm.roles.includes(role)).map((vm) => [vm.name, []]));
  for (let index = 1; index <= count; index++) placed.get(replicaVm(index, vms, role).name)!.push(index);
  return placed;
}
