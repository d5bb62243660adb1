// An image built from one of the repo's folders, each its own Docker build context, kept on the
// engine that builds it: no registry is involved.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { StackNaming } from './naming';

export interface LocalImageArgs {
  naming: StackNaming;
  repoRoot: string;
  /** The folder holding the Dockerfile; also the image's short name. */
  folder: 'service' | 'activity' | 'balancer' | 'collector' | 'consul' | 'broker';
  baseImage: string;
  /** Changes when the bundled sources change, so the image is rebuilt. */
  sourceHash?: string;
  /** What must run before the build (the bundle step). */
  dependsOn?: pulumi.Resource[];
  /**
   * The platform to build for: on a VM, its own CPU's (`linux/amd64`, `linux/arm64`, from its bootstrap). Unset
   * on one host, where the provider takes the machine running pulumi, which is then the engine's too.
   */
  platform?: pulumi.Input<string>;
}

export function localImage(name: string, args: LocalImageArgs, parent: pulumi.Resource): docker.Image {
  const context = path.join(args.repoRoot, args.folder);
  const buildArgs: Record<string, string> = { BASE_IMAGE: args.baseImage };
  if (args.sourceHash !== undefined) buildArgs.SOURCE_HASH = args.sourceHash;
  return new docker.Image(
    name,
    {
      imageName: args.naming.imageName(args.folder),
      build: {
        context,
        dockerfile: path.join(context, 'Dockerfile'),
        args: buildArgs,
        ...(args.platform !== undefined ? { platform: args.platform } : {}),
      },
      skipPush: true,
    },
    { parent, dependsOn: args.dependsOn },
  );
}
