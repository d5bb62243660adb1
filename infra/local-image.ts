// An image built from one of the repo's folders, each its own Docker build context, kept on the
// engine that builds it: no registry is involved.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { LogCollector } from './collector';
import type { StackNaming } from './naming';

export interface LocalImageArgs {
  naming: StackNaming;
  repoRoot: string;
  /** The folder holding the Dockerfile; also the image's short name. */
  folder: 'service' | 'balancer' | 'collector';
  baseImage: string;
  /** Changes when the bundled sources change, so the image is rebuilt. */
  sourceHash?: string;
  /** What must run before the build (the bundle step). */
  dependsOn?: pulumi.Resource[];
}

/** What the service replicas and the balancer share: a bundled image, the stack network, Consul. */
export interface BundledRoleArgs {
  naming: StackNaming;
  networkName: pulumi.Input<string>;
  collector: LogCollector;
  /** The bundle step; the image build waits for it. */
  bundle: pulumi.Resource;
  /** Changes when the bundled sources change, so the image is rebuilt. */
  sourceHash: string;
  repoRoot: string;
  baseImage: string;
  serviceName: string;
  consulHttpAddr: string;
  /** Containers that must exist before this role starts (Consul). */
  dependsOn: pulumi.Resource[];
}

/** The image of a bundled role, built after the bundle step. */
export function bundledImage(name: string, folder: 'service' | 'balancer', args: BundledRoleArgs, parent: pulumi.Resource): docker.Image {
  const { naming, repoRoot, baseImage, sourceHash } = args;
  return localImage(name, { naming, repoRoot, folder, baseImage, sourceHash, dependsOn: [args.bundle] }, parent);
}

export function localImage(name: string, args: LocalImageArgs, parent: pulumi.Resource): docker.Image {
  const context = path.join(args.repoRoot, args.folder);
  const buildArgs: Record<string, string> = { BASE_IMAGE: args.baseImage };
  if (args.sourceHash !== undefined) buildArgs.SOURCE_HASH = args.sourceHash;
  return new docker.Image(
    name,
    {
      imageName: args.naming.imageName(args.folder),
      build: { context, dockerfile: path.join(context, 'Dockerfile'), args: buildArgs },
      skipPush: true,
    },
    { parent, dependsOn: args.dependsOn },
  );
}
