// Every secret a deployed stack holds, by what it is: the system tests look for each in `docker inspect` of
// every container and image (infra/secret-files.ts says why none may be there).
import { activityRole, agentRole, balancerRole, brokerRole, replicaRole, roleToken } from '../../lib/consul-acl';

/** From the stack's outputs (`--show-secrets`), its gossip key (the state) and its Consul agents' node names. */
export function stackSecrets(outputs: Record<string, unknown>, gossipKey: string, agentNodes: string[]): Map<string, string> {
  const management = String(outputs.consulToken);
  const roles = [replicaRole('hello'), activityRole(), balancerRole(), brokerRole(), ...agentNodes.map(agentRole)];
  return new Map<string, string>([
    ['the management token', management],
    ['the gossip key', gossipKey],
    ['the admin token', String(outputs.balancerAdminToken)],
    ...roles.map((role) => [`the ${role.role} token`, roleToken(management, role.role)] as [string, string]),
  ]);
}

/** What of `secrets` appears in `text`. */
export function secretsIn(secrets: Map<string, string>, text: string): string[] {
  return [...secrets].filter(([, value]) => text.includes(value)).map(([what]) => what);
}
