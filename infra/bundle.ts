// The host-side build step: `npm run build` bundles service/, activity/ and balancer/ into */dist/main.js,
// which their Docker images copy. It re-runs whenever the sources' hash changes.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as command from '@pulumi/command';
import { bundleFiles, hashFiles } from '../lib/sources';

export interface AppBundleArgs {
  /** The repository root (where package.json is). */
  repoRoot: string;
}

export class AppBundle extends pulumi.ComponentResource {
  /** The command resource: images built from the bundle depend on it. */
  readonly build: command.local.Command;
  /** Hash of what goes into service/dist (lib/sources.ts bundleFiles). */
  readonly serviceSourceHash: string;
  /** Hash of what goes into activity/dist. */
  readonly activitySourceHash: string;
  /** Hash of what goes into balancer/dist. */
  readonly balancerSourceHash: string;

  constructor(name: string, args: AppBundleArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:AppBundle', name, {}, opts);
    this.serviceSourceHash = hashFiles(args.repoRoot, bundleFiles(args.repoRoot, 'service'));
    this.activitySourceHash = hashFiles(args.repoRoot, bundleFiles(args.repoRoot, 'activity'));
    this.balancerSourceHash = hashFiles(args.repoRoot, bundleFiles(args.repoRoot, 'balancer'));
    this.build = new command.local.Command(
      `${name}-build`,
      {
        create: 'npm run build',
        dir: path.resolve(args.repoRoot),
        triggers: [this.serviceSourceHash, this.activitySourceHash, this.balancerSourceHash],
      },
      { parent: this },
    );
    this.registerOutputs({
      serviceSourceHash: this.serviceSourceHash,
      activitySourceHash: this.activitySourceHash,
      balancerSourceHash: this.balancerSourceHash,
    });
  }
}
