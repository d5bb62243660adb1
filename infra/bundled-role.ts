// What the services' replicas and the balancer share: an image bundled from this repo, the stack
// network, the collector and Consul.
import * as pulumi from '@pulumi/pulumi';
import { CONSUL_TOKEN_FILE_ENV } from '../lib/consul-address';
import { CONSUL_TOKEN_FILE, SECRETS_DIR } from './secret-files';
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
  /**
   * This role's secret files (SecretFiles.volumeFor): its Consul ACL token, read through CONSUL_HTTP_TOKEN_FILE
   * (every agent runs with ACLs, default deny). The file changes only with the role's name, which replaces the
   * containers anyway.
   */
  secrets: docker.types.input.ContainerVolume;
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

/** The container env entry that hands a role its Consul token file, the way Consul's own tools take one. */
export const CONSUL_TOKEN_FILE_SETTING = `${CONSUL_TOKEN_FILE_ENV}=${SECRETS_DIR}/${CONSUL_TOKEN_FILE}`;
