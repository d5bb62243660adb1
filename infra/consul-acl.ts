// Consul's ACLs in the stack: the one generated secret (the management token), the settings every
// Consul agent gets, the role tokens derived from it, and the step that puts the policies and tokens
// into Consul. Small functions, so that a second agent (one per VM) gets the same settings and token.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as command from '@pulumi/command';
import { agentAclHcl, agentRole, consulVersionOfImage, roleToken, type AclRole } from '../lib/consul-acl';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import { hashSources } from '../lib/sources';

/**
 * Prints a random UUID. Run once, at create, by a local.Command with no triggers: its stdout is kept in
 * the state (as a secret) and never changes afterwards, so the token is stable across `pulumi up` runs.
 */
export const UUID_COMMAND = `node -e "process.stdout.write(require('node:crypto').randomUUID())"`;

/**
 * A random value generated once and kept as a Pulumi secret: `script` (a UUID by default) run at create by
 * a local.Command with no triggers and constant inputs, so the engine never runs it again.
 */
export function generatedSecret(name: string, script: string = UUID_COMMAND): pulumi.Output<string> {
  // stdout is the secret: additionalSecretOutputs keeps it encrypted in the state and in every input it feeds.
  const generator = new command.local.Command(name, { create: script }, { additionalSecretOutputs: ['stdout'] });
  // `?? ''` only for runtimes that report no stdout (mocks); the engine always reports a string.
  return pulumi.secret(generator.stdout.apply((out) => (out ?? '').trim()));
}

/** The token of `role`, derived from the management token, as a secret. */
export function roleTokenOf(managementToken: pulumi.Output<string>, role: AclRole): pulumi.Output<string> {
  return pulumi.secret(managementToken.apply((m) => roleToken(m, role.role)));
}

/**
 * The agent configuration that turns a Consul agent's ACLs on: default deny, the agent's own token for node
 * `nodeName` and, on a server, the management token (under the key the image's version accepts: `master`
 * before 1.11, `initial_management` from 1.11). A client agent never holds the management token, which only
 * servers use. A secret, since it holds tokens: it reaches the agent as a file (infra/secret-files.ts).
 */
export function agentAclConfig(
  managementToken: pulumi.Output<string>,
  nodeName: string,
  consulImage: string,
  { server = true }: { server?: boolean } = {},
): pulumi.Output<string> {
  const version = consulVersionOfImage(consulImage);
  return pulumi.secret(
    managementToken.apply((m) =>
      agentAclHcl({ management: server ? m : undefined, agent: roleToken(m, agentRole(nodeName).role) }, version),
    ),
  );
}

export interface AclInitArgs {
  repoRoot: string;
  /** Consul's HTTP API as this machine reaches it (the published port), or, with `ssh`, as that host reaches it. */
  consulHttpAddr: string;
  managementToken: pulumi.Output<string>;
  serviceName: string;
  /** Node names of every Consul agent: each gets its agent token. */
  agentNodes: string[];
  /** Re-run when these change: a new Consul container or data volume may have lost the ACL state. */
  consulIdentity: pulumi.Input<string>[];
  /**
   * On VMs: reach Consul through an SSH local forward to this host (lib/ssh-tunnel.ts), with the options
   * the docker provider uses (SshAccess.sshOpts), since its API listens on the VM's loopback only.
   */
  ssh?: { user: string; host: string; port: number; opts: string[] };
}

/** The files the init step runs (all of lib/, as the bundles count it: it imports several); a change re-runs it. */
const ACL_INIT_SOURCES = ['infra/acl-init.ts', 'lib'];

/**
 * The step that creates (or updates) the policies and role tokens in Consul, after Consul is up: a
 * local.Command running infra/acl-init.ts with tsx on the machine that runs `pulumi up`, against
 * Consul's published HTTP port (on VMs through an SSH tunnel to a server's VM). It is idempotent (policies found by name, tokens by their derived
 * AccessorID), so running it again on an update changes nothing.
 */
export function aclInit(name: string, args: AclInitArgs, opts: pulumi.CustomResourceOptions): command.local.Command {
  return new command.local.Command(
    name,
    {
      create: 'node --import tsx infra/acl-init.ts',
      dir: path.resolve(args.repoRoot),
      environment: {
        CONSUL_HTTP_ADDR: args.consulHttpAddr,
        [CONSUL_TOKEN_ENV]: args.managementToken,
        ACL_SERVICE_NAME: args.serviceName,
        ACL_AGENT_NODES: args.agentNodes.join(','),
        ...(args.ssh
          ? {
              ACL_SSH_TARGET: `${args.ssh.user}@${args.ssh.host}`,
              ACL_SSH_PORT: String(args.ssh.port),
              ACL_SSH_OPTS: JSON.stringify(args.ssh.opts),
            }
          : {}),
      },
      triggers: [hashSources(args.repoRoot, ACL_INIT_SOURCES), ...args.consulIdentity],
    },
    opts,
  );
}
