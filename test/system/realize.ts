// Test-only realizer: turns the resources the Pulumi program declares (recorded under the SDK's mock
// runtime) into real Docker objects, the way the engine and the docker provider would. Applying a second
// record over the first creates what is new, replaces what changed and removes what is gone (pulumi up);
// destroy() removes everything (pulumi destroy). It is never used outside tests.
import { isDeepStrictEqual } from 'node:util';
import { docker, inspect, run } from './docker';
import {
  planCommand,
  planContainer,
  planImage,
  planNetwork,
  planVolume,
  type CommandPlan,
  type ContainerPlan,
  type ImagePlan,
  type Inputs,
  type NetworkPlan,
  type VolumePlan,
} from './plans';

/** One declared resource as the recorder saw it. */
export interface DeclaredResource {
  type: string;
  name: string;
  inputs: Inputs;
  /** false for ComponentResources: they group children and have nothing to realize. */
  custom?: boolean;
  options: {
    /** Names (or URNs) of the resources this one depends on explicitly. */
    dependsOn?: string[];
    /** Everything it waits for: dependsOn plus the resources whose outputs feed its inputs. */
    dependencies?: string[];
    deleteBeforeReplace?: boolean;
    parent?: string;
  };
}

type Plan = NetworkPlan | VolumePlan | ImagePlan | CommandPlan | ContainerPlan;

interface LiveObject {
  key: string;
  resource: DeclaredResource;
  plan: Plan;
  /** Docker id of a container, for callers that want to check it survived an update. */
  id?: string;
}

/** How a container went away: graceful stops are checked by the tests (exit code 0 = drained itself). */
export interface RemovedContainer {
  name: string;
  graceSeconds?: number;
  exitCode?: number;
  stopMs: number;
}

export interface ApplySummary {
  created: string[];
  replaced: string[];
  deleted: string[];
  unchanged: string[];
  removedContainers: RemovedContainer[];
}

export interface RealizerOptions {
  /** The Pulumi program's directory: relative build contexts, dockerfiles and command dirs resolve here. */
  projectDir: string;
  log?: (line: string) => void;
}

/** Resource types that are not Docker objects and carry nothing to apply. */
function isComponentOrStack(type: string): boolean {
  const pkg = type.split(':')[0];
  return type === 'pulumi:pulumi:Stack' || !['docker', 'command', 'pulumi', 'random'].includes(pkg);
}

const keyOf = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

export class Realizer {
  private readonly live = new Map<string, LiveObject>();
  /** Old copies of replaced objects not deleted yet (an apply that failed midway leaves them here). */
  private readonly replacedPending: LiveObject[] = [];
  private readonly log: (line: string) => void;

  constructor(private readonly options: RealizerOptions) {
    this.log = options.log ?? (() => {});
  }

  /** Plans every resource of a record without touching Docker: throws on anything it would not apply. */
  plan(record: DeclaredResource[]): Map<string, { resource: DeclaredResource; plan: Plan }> {
    const plans = new Map<string, { resource: DeclaredResource; plan: Plan }>();
    for (const resource of orderByDependencies(record)) {
      const key = keyOf(resource);
      if (plans.has(key)) throw new Error(`realizer: two resources named ${key} (the engine rejects duplicate URNs)`);
      const plan = this.planOne(resource);
      if (plan) plans.set(key, { resource, plan });
    }
    return plans;
  }

  private planOne(resource: DeclaredResource): Plan | undefined {
    const { type, name, inputs } = resource;
    const dir = this.options.projectDir;
    switch (type) {
      case 'docker:index/network:Network':
        return planNetwork(name, inputs);
      case 'docker:index/volume:Volume':
        return planVolume(name, inputs);
      case 'docker:index/image:Image':
        return planImage(name, inputs, dir);
      case 'docker:index/container:Container':
        return planContainer(name, inputs);
      case 'command:local:Command':
        return planCommand(name, inputs, dir);
      case 'pulumi:providers:docker': {
        const host = inputs.host as string | undefined;
        if (host) throw new Error(`realizer: docker provider "${name}" targets host ${host}; only the local engine is realized`);
        const other = Object.keys(inputs).filter((k) => !['host', 'version', 'pluginDownloadURL'].includes(k) && inputs[k] != null);
        if (other.length) throw new Error(`realizer: docker provider "${name}" declares ${other.join(', ')}, which the realizer does not apply`);
        return undefined;
      }
      default:
        if (resource.custom === false || isComponentOrStack(type) || type === 'pulumi:providers:command') return undefined;
        throw new Error(`realizer: resource type ${type} ("${name}") is not realized; supported: Network, Volume, Image, Container, local.Command`);
    }
  }

  /** Makes Docker match the record, as `pulumi up` would after a config change. */
  async apply(record: DeclaredResource[]): Promise<ApplySummary> {
    const plans = this.plan(record);
    const summary: ApplySummary = { created: [], replaced: [], deleted: [], unchanged: [], removedContainers: [] };

    for (const [key, { resource, plan }] of plans) {
      const old = this.live.get(key);
      if (old && isDeepStrictEqual(old.resource.inputs, resource.inputs)) {
        old.resource = resource;
        summary.unchanged.push(key);
        continue;
      }
      if (old) {
        if (resource.options.deleteBeforeReplace) {
          await this.remove(old, summary);
          this.live.delete(key);
        } else {
          this.replacedPending.push(old);
        }
        summary.replaced.push(key);
      } else {
        summary.created.push(key);
      }
      const live: LiveObject = { key, resource, plan };
      live.id = await this.create(plan);
      this.live.set(key, live);
    }

    // The engine deletes replaced and vanished resources last, dependents first.
    while (this.replacedPending.length > 0) {
      await this.remove(this.replacedPending[this.replacedPending.length - 1], summary);
      this.replacedPending.pop();
    }
    const gone = [...this.live.values()].filter((o) => !plans.has(o.key)).reverse();
    for (const object of gone) {
      await this.remove(object, summary);
      this.live.delete(object.key);
      summary.deleted.push(object.key);
    }
    return summary;
  }

  /** Removes everything realized so far, dependents first, as `pulumi destroy` does. */
  async destroy(): Promise<ApplySummary> {
    const summary: ApplySummary = { created: [], replaced: [], deleted: [], unchanged: [], removedContainers: [] };
    const errors: string[] = [];
    for (const object of [...this.replacedPending.splice(0).reverse(), ...[...this.live.values()].reverse()]) {
      try {
        await this.remove(object, summary);
        summary.deleted.push(object.key);
      } catch (error) {
        errors.push(String(error));
      }
      this.live.delete(object.key);
    }
    if (errors.length) throw new Error(`realizer: destroy left errors:\n${errors.join('\n')}`);
    return summary;
  }

  /** Docker name and id of each live container, by resource name. */
  containers(): Array<{ resourceName: string; name: string; id: string }> {
    return [...this.live.values()]
      .filter((o) => o.plan.kind === 'container')
      .map((o) => ({ resourceName: o.resource.name, name: o.plan.name, id: o.id! }));
  }

  private async create(plan: Plan): Promise<string | undefined> {
    this.log(`create ${plan.kind} ${plan.name}`);
    switch (plan.kind) {
      case 'network':
      case 'volume':
        return (await docker(plan.createArgs)).trim();
      case 'image': {
        const previous = (await inspect('image', plan.name))?.Id;
        const id = (await docker(plan.buildArgs, { timeoutMs: 300_000 })).trim();
        // A rebuild moves the tag; the old copy would linger untagged (kept only while a container uses it).
        if (previous && previous !== id) await docker(['image', 'rm', previous]).catch(() => {});
        return id;
      }
      case 'command':
        if (plan.create) await runCommand(plan, plan.create, 300_000);
        return undefined;
      case 'container':
        return this.createContainer(plan);
    }
  }

  private async createContainer(plan: ContainerPlan): Promise<string> {
    const id = (await docker(plan.createArgs)).trim();
    try {
      for (const network of plan.moreNetworks) {
        await docker(['network', 'connect', ...network.aliases.flatMap((a) => ['--alias', a]), network.name, id]);
      }
      if (plan.start) await docker(['start', id]);
      if (plan.waitHealthySeconds !== undefined) await waitHealthy(plan.name, plan.waitHealthySeconds);
      return id;
    } catch (error) {
      // Like the provider: a container that failed to come up is not left behind.
      await docker(['rm', '-f', '-v', id]).catch(() => {});
      throw error;
    }
  }

  private async remove(object: LiveObject, summary: ApplySummary): Promise<void> {
    try {
      await this.removeObject(object, summary);
    } catch (error) {
      // Already gone (removed by hand, or by a half-finished earlier step) counts as removed.
      if (!/no such (container|volume)|network \S+ not found/i.test(String(error))) throw error;
      this.log(`${object.plan.kind} ${object.plan.name} was already gone`);
    }
  }

  private async removeObject(object: LiveObject, summary: ApplySummary): Promise<void> {
    const { plan } = object;
    this.log(`delete ${plan.kind} ${plan.name}`);
    switch (plan.kind) {
      case 'container': {
        const started = Date.now();
        const removed: RemovedContainer = { name: plan.name, graceSeconds: plan.destroyGraceSeconds, stopMs: 0 };
        // The provider removes by force unless destroyGraceSeconds is set; then it stops with that grace first.
        if (plan.destroyGraceSeconds !== undefined) {
          await docker(['stop', '-t', String(plan.destroyGraceSeconds), plan.name], { timeoutMs: (plan.destroyGraceSeconds + 30) * 1000 });
          removed.exitCode = (await inspect('container', plan.name))?.State?.ExitCode;
        }
        removed.stopMs = Date.now() - started;
        await docker(['rm', '-f', ...(plan.removeVolumes ? ['-v'] : []), plan.name]);
        summary.removedContainers.push(removed);
        return;
      }
      case 'network':
        await docker(['network', 'rm', plan.name]);
        return;
      case 'volume':
        await docker(['volume', 'rm', plan.name]);
        return;
      case 'image':
        // Images built for the stack go too, unless a container outside the stack still uses them.
        await docker(['image', 'rm', plan.name]).catch((error) => this.log(`kept image ${plan.name}: ${String(error)}`));
        return;
      case 'command':
        if (plan.delete) await runCommand(plan, plan.delete);
        return;
    }
  }
}

/** One of a local.Command's scripts, through its interpreter, in its dir with its environment. */
function runCommand(plan: CommandPlan, script: string, timeoutMs?: number): Promise<string> {
  const [interpreter, ...args] = plan.interpreter;
  return run(interpreter, [...args, script], { cwd: plan.dir, env: { ...process.env, ...plan.env }, timeoutMs });
}

async function waitHealthy(name: string, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const state = (await inspect('container', name))?.State;
    if (state?.Health?.Status === 'healthy' || (!state?.Health && state?.Running)) return;
    if (Date.now() > deadline) throw new Error(`realizer: container ${name} not healthy within ${seconds} s (state ${JSON.stringify(state)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Stable topological order: a resource comes after everything it depends on (explicitly or through its
 * inputs); depending on a component means depending on all of its descendants. Otherwise declaration order.
 */
export function orderByDependencies(record: DeclaredResource[]): DeclaredResource[] {
  const byName = new Map<string, DeclaredResource[]>();
  const children = new Map<string, DeclaredResource[]>();
  for (const r of record) {
    for (const ref of [r.name, keyOf(r)]) byName.set(ref, [...(byName.get(ref) ?? []), r]);
    if (r.options.parent) children.set(r.options.parent, [...(children.get(r.options.parent) ?? []), r]);
  }
  const resolve = (ref: string): DeclaredResource[] => {
    const found = byName.get(ref) ?? byName.get(ref.split('::').pop()!);
    if (!found) throw new Error(`realizer: a dependency names ${ref}, which is not in the record`);
    const descendants = (r: DeclaredResource): DeclaredResource[] =>
      r.custom === false ? (children.get(r.name) ?? []).flatMap((c) => [c, ...descendants(c)]) : [];
    return found.flatMap((r) => [r, ...descendants(r)]);
  };
  const ordered: DeclaredResource[] = [];
  const state = new Map<DeclaredResource, 'visiting' | 'done'>();
  const visit = (r: DeclaredResource) => {
    if (state.get(r) === 'done') return;
    if (state.get(r) === 'visiting') throw new Error(`realizer: dependency cycle through ${keyOf(r)}`);
    state.set(r, 'visiting');
    for (const ref of r.options.dependencies ?? r.options.dependsOn ?? []) for (const dep of resolve(ref)) if (dep !== r) visit(dep);
    state.set(r, 'done');
    ordered.push(r);
  };
  record.forEach(visit);
  return ordered;
}
