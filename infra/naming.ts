// Names and labels derived from the project and stack only, so two stacks never collide and a
// resource's name never depends on how many of its siblings exist.

/** Label key prefix marking every Docker object this project creates. */
export const LABEL_PREFIX = 'io.consul-nginx-pulumi';

export interface DockerLabel {
  label: string;
  value: string;
}

export class StackNaming {
  constructor(
    readonly project: string,
    readonly stack: string,
  ) {}

  /** Prefix of every container, network and volume name: `cnp-<stack>`. */
  get prefix(): string {
    return `cnp-${this.stack}`;
  }

  /** Docker object name for a role, e.g. `cnp-dev-consul` or `cnp-dev-replica-3`. */
  objectName(role: string): string {
    return `${this.prefix}-${role}`;
  }

  /**
   * Docker object name for one version of a role, e.g. `cnp-dev-replica-3-0123456789ab`: the role's name
   * plus the short form of the image id it runs. A new image gives a new name, so the new container can
   * exist next to the old one while the engine creates before it deletes.
   */
  versionedName(role: string, imageId: string): string {
    return `${this.objectName(role)}-${shortImageId(imageId)}`;
  }

  /** Local image name for one of the images built from this repo, e.g. `cnp-service:dev`. */
  imageName(part: string): string {
    return `cnp-${part}:${this.stack}`;
  }

  /** The labels every Docker object of the stack carries, plus its role (and any extra ones). */
  labels(role: string, extra: Record<string, string> = {}): DockerLabel[] {
    const all: Record<string, string> = {
      [`${LABEL_PREFIX}.project`]: this.project,
      [`${LABEL_PREFIX}.stack`]: this.stack,
      [`${LABEL_PREFIX}.role`]: role,
      ...Object.fromEntries(Object.entries(extra).map(([key, value]) => [`${LABEL_PREFIX}.${key}`, value])),
    };
    return Object.entries(all).map(([label, value]) => ({ label, value }));
  }
}

/**
 * The first 12 hex digits of an image id (`sha256:<64 hex>`, as docker.Image reports a local build) or
 * of a pushed digest (`name@sha256:<64 hex>`): what `docker images` shows as IMAGE ID.
 */
export function shortImageId(imageId: string): string {
  const match = /(?:^|@)sha256:([0-9a-f]{64})$/.exec(imageId);
  if (!match)
    throw new Error(`image id ${JSON.stringify(imageId)} is not allowed: use sha256:<64 hex digits> or name@sha256:<64 hex digits>`);
  return match[1].slice(0, 12);
}
