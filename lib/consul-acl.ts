// Consul's ACL model for this stack, in one place: which role may do what (the policy rules), how each
// role's token is derived from the management token, and the agent's ACL settings. lib/consul-acl-apply.ts
// puts a plan into Consul. The Pulumi program, its ACL init step (infra/acl-init.ts), the test harness and
// the bench all use this module.
import crypto from 'node:crypto';
import { ACTIVITY_SERVICE_NAME, BROKER_SERVICE_NAME } from './service-name';

/** The KV prefix a service's users live under (no trailing slash); its replicas may write only below it. */
export function usersKeyPrefix(serviceName: string): string {
  return `${serviceName}/users`;
}

/** The KV prefix of a service's outbox (no trailing slash): its user events until the broker acked them. */
export function outboxKeyPrefix(serviceName: string): string {
  return `${serviceName}/outbox`;
}

export interface AclPolicy {
  name: string;
  description: string;
  /** Consul's HCL rules. */
  rules: string;
}

export interface AclToken {
  accessorId: string;
  secretId: string;
  description: string;
  /** Names of policies in the same plan. */
  policies: string[];
}

export interface AclPlan {
  policies: AclPolicy[];
  tokens: AclToken[];
}

/**
 * A replica registers only its own service (with its HTTP check, which belongs to the service) and
 * reads and writes only its users' keys and its outbox (the user events its relay publishes and then
 * deletes). Reading the agent's service list needs service read, which write includes; its readiness
 * probe reads its service's health, and its relay the broker's, whose entries name nodes, hence node
 * read. Nothing else is granted.
 */
export function replicaRules(serviceName: string, natsService: string = BROKER_SERVICE_NAME): string {
  return [
    `service "${serviceName}" { policy = "write" }`,
    `key_prefix "${usersKeyPrefix(serviceName)}/" { policy = "write" }`,
    `key_prefix "${outboxKeyPrefix(serviceName)}/" { policy = "write" }`,
    `service "${natsService}" { policy = "read" }`,
    'node_prefix "" { policy = "read" }',
  ].join('\n');
}

/**
 * An activity replica registers only its own service and finds the broker (its health entries name
 * nodes, hence node read); it reads no key.
 */
export function activityRules(serviceName: string, natsService: string = BROKER_SERVICE_NAME): string {
  return [
    `service "${serviceName}" { policy = "write" }`,
    `service "${natsService}" { policy = "read" }`,
    'node_prefix "" { policy = "read" }',
  ].join('\n');
}

/**
 * The balancer is the gateway to every service that asks for routes: it reads the catalog's service list
 * and each routed service's health (any service may register route tags), and the entries name nodes,
 * hence node read. Read only: it registers and writes nothing.
 */
export function balancerRules(): string {
  return ['service_prefix "" { policy = "read" }', 'node_prefix "" { policy = "read" }'].join('\n');
}

/**
 * A Consul agent registers its own node and syncs the services on it (HashiCorp's agent policy, for
 * one node): every agent of a multi-host stack gets its own token with its own node name.
 */
export function agentRules(nodeName: string): string {
  return [`node "${nodeName}" { policy = "write" }`, 'service_prefix "" { policy = "read" }'].join('\n');
}

/**
 * A token's id derived from the management token: HMAC-SHA256 keyed by it, shaped as a version-4 UUID
 * (Consul wants UUIDs). One generated secret thus gives every role a stable, unguessable token, and
 * a role token reveals nothing of the management token.
 */
export function deriveTokenId(managementToken: string, label: string): string {
  const bytes = crypto.createHmac('sha256', managementToken).update(label).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The SecretID of a role's token: what goes into CONSUL_HTTP_TOKEN or the agent's config. */
export function roleToken(managementToken: string, role: string): string {
  return deriveTokenId(managementToken, `secret:${role}`);
}

/** A role of the stack: a name (also the policy's and a label of the token ids) and its rules. */
export interface AclRole {
  role: string;
  description: string;
  rules: string;
}

export const replicaRole = (serviceName: string): AclRole => ({
  role: `replica-${serviceName}`,
  description: `replicas of ${serviceName}: register ${serviceName}, write ${usersKeyPrefix(serviceName)}/ and ${outboxKeyPrefix(serviceName)}/`,
  rules: replicaRules(serviceName),
});

export const balancerRole = (): AclRole => ({
  role: 'balancer',
  description: 'balancer (the gateway): read every service and its health',
  rules: balancerRules(),
});

/** The activity service's replicas (activity/): role `activity` for the default service name. */
export const activityRole = (serviceName: string = ACTIVITY_SERVICE_NAME): AclRole => ({
  role: serviceName === ACTIVITY_SERVICE_NAME ? 'activity' : `activity-${serviceName}`,
  description: `replicas of the activity service ${serviceName}: register ${serviceName}, find the broker`,
  rules: activityRules(serviceName),
});

export const agentRole = (nodeName: string): AclRole => ({
  role: `agent-${nodeName}`,
  description: `Consul agent on node ${nodeName}`,
  rules: agentRules(nodeName),
});

/**
 * The token the program registers the broker with on its host's agent (nats-server cannot register
 * itself): the agent keeps it with the service and syncs the service and its check to the catalog with it,
 * so it may write that one service only.
 */
export const brokerRole = (): AclRole => ({
  role: `broker-${BROKER_SERVICE_NAME}`,
  description: `registration of ${BROKER_SERVICE_NAME} (the NATS server) by the stack`,
  rules: `service "${BROKER_SERVICE_NAME}" { policy = "write" }`,
});

/** Every role of a stack serving `serviceName` and the activity service, with Consul agents on `agentNodes` (what acl-init applies). */
export function stackRoles(serviceName: string, agentNodes: readonly string[]): AclRole[] {
  return [...agentNodes.map(agentRole), replicaRole(serviceName), balancerRole(), activityRole(), brokerRole()];
}

/** The policies and tokens of `roles`, every token id derived from the management token. */
export function aclPlan(managementToken: string, roles: readonly AclRole[]): AclPlan {
  return {
    policies: roles.map((r) => ({ name: r.role, description: r.description, rules: r.rules })),
    tokens: roles.map((r) => ({
      accessorId: deriveTokenId(managementToken, `accessor:${r.role}`),
      secretId: roleToken(managementToken, r.role),
      description: r.description,
      policies: [r.role],
    })),
  };
}

/** The agent's `acl` settings shared by every Consul version the stack runs; the tokens are added per version. */
export const AGENT_ACL_SETTINGS = {
  enabled: true,
  default_policy: 'deny',
  // While the servers cannot be asked (no leader), tokens already resolved keep their rights instead of
  // all requests being denied: a Consul outage must not deregister every replica.
  down_policy: 'extend-cache',
  // Tokens an operator sets through the agent API (`consul acl set-agent-token`) survive a restart.
  enable_token_persistence: true,
} as const;

/**
 * The config key of the initial management token: `master` until Consul 1.10, renamed
 * `initial_management` in 1.11. 1.11 and later still map `master` with a deprecation warning
 * (agent/config/deprecated.go), but 1.8 rejects the new name, so the key follows the image's version.
 */
export function managementTokenKey(consulVersion: { major: number; minor: number } | undefined): 'master' | 'initial_management' {
  if (consulVersion && consulVersion.major === 1 && consulVersion.minor < 11) return 'master';
  return 'initial_management';
}

/** The version an image reference's tag names (`hashicorp/consul:1.20`, `cnp-consul:1.8.7`), if any. */
export function consulVersionOfImage(image: string): { major: number; minor: number } | undefined {
  const match = /:v?(\d+)\.(\d+)(?:[.-][^/]*)?$/.exec(image.replace(/@sha256:[a-f0-9]+$/, ''));
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : undefined;
}

/**
 * The agent's whole `acl` block as one HCL line for `-hcl`: default deny, the management token (under
 * the key the version wants; servers only, where it bootstraps the ACL system) and the agent's own token.
 */
export function agentAclHcl(
  tokens: { management?: string; agent: string },
  consulVersion: { major: number; minor: number } | undefined,
): string {
  const s = AGENT_ACL_SETTINGS;
  const management = tokens.management === undefined ? '' : `${managementTokenKey(consulVersion)} = "${tokens.management}" `;
  return (
    `acl { enabled = ${s.enabled} default_policy = "${s.default_policy}" down_policy = "${s.down_policy}" ` +
    `enable_token_persistence = ${s.enable_token_persistence} ` +
    `tokens { ${management}agent = "${tokens.agent}" } }`
  );
}
