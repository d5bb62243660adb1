// What `pulumi stack output` shows, whatever the layout (one engine or VMs).
import type * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from './config';
import type { StackNaming } from './naming';

export interface StackOutputs {
  /** The public URL: https:// with publicTls on. */
  balancerUrl: string;
  /** The CA of the certificate the stack made for HTTPS at the edge (clients trust it); undefined otherwise. */
  balancerCaCertificate?: pulumi.Output<string>;
  /** On VMs: the stack's CA of the TLS between VMs, which the admin listener's certificate chains to. */
  internalCaCertificate?: pulumi.Output<string>;
  balancerAdminUrl: string;
  consulUiUrl: string;
  replicaNames: pulumi.Output<string[]>;
  activityReplicaNames: pulumi.Output<string[]>;
  logsCommand: string;
}

/** What both layouts start from. */
export interface StackContext {
  config: StackConfig;
  naming: StackNaming;
  repoRoot: string;
  /** The Consul gossip encryption key, a secret. */
  gossipKey: pulumi.Output<string>;
  /** Consul's initial management token, a secret (infra/consul-acl.ts). */
  consulManagementToken: pulumi.Output<string>;
  /** The token the balancer's admin listener asks for (balancer/README.md, "Admin login"), a secret. */
  balancerAdminToken: pulumi.Output<string>;
}
