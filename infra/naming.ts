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
