// How a host's containers get their secrets (Consul tokens, the gossip key, TLS keys) as files, never in their
// environment, command line or a build argument, where `docker inspect` would show them. Per role, a named
// volume; one holder container per host (and the collector's own on a VM: it is declared before the host's
// Consul agent, which logs to it), created and never started, into which the docker provider uploads
// the files (kreuzwerker's `upload`: after create, before start). A role's containers mount only their
// role's volume, read-only, at /run/secrets. The holder is needed because the provider extracts uploads at
// "/", which Docker refuses for a container with a read-only root, as every running container of the stack
// has. The files are owned by root (the provider's tar has uid 0) with mode 0444: in the volume of one role,
// which only that role's containers mount, each running as its one user.
import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { StackNaming } from './naming';

/** Where a role's containers find their files. */
export const SECRETS_DIR = '/run/secrets';

/** A role's file holding its Consul ACL token, read through CONSUL_HTTP_TOKEN_FILE. */
export const CONSUL_TOKEN_FILE = 'consul-token';
/** The balancer's file holding the admin listener's token, read through ADMIN_TOKEN_FILE. */
export const ADMIN_TOKEN_FILE = 'admin-token';

export interface SecretFilesArgs {
  naming: StackNaming;
  /** An image already on the host's engine (the holder only needs one to be created from; it never runs). */
  image: pulumi.Input<string>;
  /** By role: file name -> content (a secret). */
  files: Record<string, Record<string, pulumi.Input<string>>>;
  /** The holder's name (naming.objectName): 'secrets', the one of the host's Consul agent, unless given. */
  holderName?: string;
}

export class SecretFiles extends pulumi.ComponentResource {
  readonly holder: docker.Container;
  private readonly volumes = new Map<string, docker.Volume>();
  private readonly files: SecretFilesArgs['files'];

  constructor(name: string, args: SecretFilesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:SecretFiles', name, {}, opts);
    const { naming } = args;
    this.files = args.files;
    const roles = Object.keys(args.files).sort();
    for (const role of roles) {
      this.volumes.set(
        role,
        new docker.Volume(`${name}-${role}`, { name: naming.objectName(`secrets-${role}`), labels: naming.labels(role) }, { parent: this }),
      );
    }
    this.holder = new docker.Container(
      `${name}-holder`,
      {
        name: naming.objectName(args.holderName ?? 'secrets'),
        image: args.image,
        labels: naming.labels('secrets'),
        // Never started: it exists only for the uploads into the volumes.
        start: false,
        mustRun: false,
        volumes: roles.map((role) => ({ volumeName: this.volumes.get(role)!.name, containerPath: `/secrets/${role}` })),
        uploads: roles.flatMap((role) =>
          Object.entries(args.files[role]).map(([file, content]) => ({
            file: `/secrets/${role}/${file}`,
            content: pulumi.secret(content),
            permissions: '0444',
          })),
        ),
      },
      // A fixed name: the old holder goes first; the volumes stay and the new one writes the files again.
      { parent: this, deleteBeforeReplace: true },
    );
    this.registerOutputs({});
  }

  /**
   * A digest of a role's files, for a container that reads them at start to be replaced when they change (and
   * only then: the holder is replaced when any role's files change). A SHA-256 of random tokens and keys
   * tells nothing about them, so it is not a secret.
   */
  versionOf(role: string): pulumi.Output<string> {
    const files = this.files[role];
    if (!files) throw new Error(`no secret files for role ${role} on this host`);
    const names = Object.keys(files).sort();
    return pulumi.unsecret(
      pulumi.all(names.map((file) => files[file])).apply((contents) =>
        createHash('sha256')
          .update(JSON.stringify(names.map((file, i) => [file, contents[i]])))
          .digest('hex')
          .slice(0, 16),
      ),
    );
  }

  /** The mount that gives a role's containers its files, read-only. */
  volumeFor(role: string): docker.types.input.ContainerVolume {
    const volume = this.volumes.get(role);
    if (!volume) throw new Error(`no secret files for role ${role} on this host`);
    return { volumeName: volume.name, containerPath: SECRETS_DIR, readOnly: true };
  }
}
