// What the services' replicas and the balancer share: an image bundled from this repo, the stack
// network, the collector and Consul.
import * as pulumi from '@pulumi/pulumi';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import type * as docker from '@pulumi/docker';
import type { LogDestination } from './container-settings';
import { localImage } from './local-image';
import type { StackNaming } from './naming';

export interface BundledRoleArgs {
  naming: StackNaming;
  networkName: pulumi.Input<string>;
  /** Where its containers' logs go (the stack's collector). */
  collector: LogDestination;
  /** The bundle step; the image build waits for it. */
  bundle: pulumi.Resource;
  /** Changes when the bundled sources change, so the image is rebuilt. */
  sourceHash: string;
  repoRoot: string;
  baseImage: string;
  serviceName: string;
  consulHttpAddr: string;
  /** The platform its image is built for (a VM's, from its bootstrap); unset on one host (local-image.ts). */
  platform?: pulumi.Input<string>;
  /** This role's Consul ACL token (a Pulumi secret), passed as CONSUL_HTTP_TOKEN: every agent runs with ACLs, default deny. */
  consulToken: pulumi.Output<string>;
}

/** The image of a bundled role, built after the bundle step. */
export function bundledImage(
  name: string,
  folder: 'service' | 'activity' | 'balancer',
  args: BundledRoleArgs,
  parent: pulumi.Resource,
): docker.Image {
  const { naming, repoRoot, baseImage, sourceHash, platform } = args;
  return localImage(name, { naming, repoRoot, folder, baseImage, sourceHash, platform, dependsOn: [args.bundle] }, parent);
}

/** The container env entries that hand a role its Consul token, the way Consul's own tools take one. */
export function consulTokenEnv(args: BundledRoleArgs): pulumi.Output<string>[] {
  return [pulumi.interpolate`${CONSUL_TOKEN_ENV}=${args.consulToken}`];
}
