// The stack, top to bottom: config in, the hosts (one Docker engine, or several VMs), the stack declared over them, outputs out.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { loadConfig } from './config';
import { StackNaming } from './naming';
import { gossipKey } from './gossip-key';
import { generatedSecret } from './consul-acl';
import { oneHost, vmHosts } from './hosts';
import { declareStack } from './stack';

// Validated before any resource is declared: a bad value stops here with one clear Error.
const config = loadConfig();
const context = {
  config,
  naming: new StackNaming(pulumi.getProject(), pulumi.getStack()),
  repoRoot: path.resolve(__dirname, '..'),
  // Every Consul agent encrypts its gossip, on one host as on VMs.
  gossipKey: gossipKey(config.consulGossipKey),
  // Consul's ACLs: one generated secret; every role's token is derived from it (infra/consul-acl.ts).
  consulManagementToken: generatedSecret('consul-management-token'),
  // The admin listener's token: a random UUID made once, like the management token, and kept apart from it.
  balancerAdminToken: generatedSecret('balancer-admin-token'),
};

const stack = declareStack(context, config.vms.length > 0 ? vmHosts(context) : [oneHost(context)]);

export const balancerUrl = stack.balancerUrl;
/** With publicTls on and no certificate given: the CA to trust for balancerUrl (curl --cacert, npm run evidence); else ''. */
export const balancerCaCertificate = stack.balancerCaCertificate ?? '';
/** On VMs: the CA of the TLS between VMs, which the admin listener's https:// certificate chains to; else ''. */
export const internalCaCertificate = stack.internalCaCertificate ?? '';
/** The balancer's admin listener (status, X-Upstream-Addr, the evidence page): loopback, or HTTPS on the private network. */
export const balancerAdminUrl = stack.balancerAdminUrl;
/** The evidence page (balancer/README.md): the instances and a chart of requests per instance, live. */
export const evidencePageUrl = pulumi.interpolate`${stack.balancerAdminUrl}/_balancer/evidence`;
export const consulUiUrl = stack.consulUiUrl;
/** The token for Consul's UI and CLI (`pulumi stack output --show-secrets consulToken`); a secret. */
export const consulToken = context.consulManagementToken;
/** The token the admin listener (status, evidence page) asks for: a Bearer header, or typed once at /_balancer/login; a secret. */
export const balancerAdminToken = context.balancerAdminToken;
export const replicaNames = stack.replicaNames;
export const activityReplicaNames = stack.activityReplicaNames;
export const logsCommand = stack.logsCommand;
