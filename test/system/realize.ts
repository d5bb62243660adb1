// Test-only realizer: turns the resources the Pulumi program declares (recorded under the SDK's mock
// runtime) into real Docker objects, the way the engine and the docker provider would. Applying a second
// record over the first runs the steps the engine would (diff.ts: create, update in place, replace in the
// engine's order, delete); destroy() removes everything (pulumi destroy). It is never used outside tests.
import { docker, inspect, run, type Engine } from './docker';
import { Engines, LOCAL_ENGINE, runRemote } from './engines';
import { deleteWaves, keyOf, planSteps, type DeclaredResource, type ResourceDiff, type StateEntry, type Step } from './diff';
import {
  planCommand,
  planContainer,
  planDockerProvider,
  planRemoteCommand,
  planImage,
  planNetwork,
  planVolume,
  type CommandPlan,
  type ContainerPlan,
  type ImagePlan,
  type NetworkPlan,
  type ProviderPlan,
  type RemoteCommandPlan,
  type VolumePlan,
  updateArgs,
} from './plans';

export type { DeclaredResource } from './diff';

type Plan = NetworkPlan | VolumePlan | ImagePlan | CommandPlan | RemoteCommandPlan | ContainerPlan;

const DOCKER_PROVIDER = 'pulumi:providers:docker';

interface LiveObject extends StateEntry {
  key: string;
  plan: Plan;
  /** The engine of the provider it was created with: the engine deletes with the old provider too. */
  engine: Engine;
  /** Docker id of a container or a built image. */
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
  /** Changed in place: a container's restart or memory, an image rebuilt under the same resource. */
  updated: string[];
  deleted: string[];
  unchanged: string[];
  /** `key: input` for every changed input the provider reports but never applies (healthcheck, ...). */
  unapplied: string[];
  removedContainers: RemovedContainer[];
  /** Every step as it ran, `op key`, in order (the final deletes of one wave in the order they began). */
  steps: string[];
}

export interface RealizerOptions {
  /** The Pulumi program's directory: relative build contexts, dockerfiles and command dirs resolve here. */
  projectDir: string;
  log?: (line: string) => void;
}

export interface ApplyOptions {
  /**
   * `pulumi up --refresh`: read the containers first. One that is gone leaves the state, and so does one
   * that is stopped, which the provider's Read removes (must_run defaults to true; kreuzwerker
   * resource_docker_container_funcs.go, resourceDockerContainerRead: "We didn't just create it, so don't
   * wait around" → resourceDockerContainerDelete): either is created again.
   */
  refresh?: boolean;
}

/** A container whose start or `wait` failed: it stays in the state, as the engine keeps it, with this error. */
export class InitializationError extends Error {}

/** Resource types that are not Docker objects and carry nothing to apply. */
function isComponentOrStack(type: string): boolean {
  const pkg = type.split(':')[0];
  return type === 'pulumi:pulumi:Stack' || !['docker', 'command', 'pulumi', 'random'].includes(pkg);
}

const emptySummary = (): ApplySummary => ({
  created: [],
  replaced: [],
  updated: [],
  deleted: [],
  unchanged: [],
  unapplied: [],
  removedContainers: [],
  steps: [],
});

export class Realizer {
  /** The state: realized objects by resource key, in the order they were first created. */
  private readonly live = new Map<string, LiveObject>();
  /** Old copies of create-before-delete replacements not deleted yet (an apply that failed midway leaves them). */
  private readonly replacedPending: LiveObject[] = [];
  /** What each realized resource depends on, from the record it was applied with (deletes run dependents first). */
  private dependencies = new Map<string, Set<string>>();
  /** Declared image ids (the recorded repoDigest) to the ids the engine gave the builds. */
  private readonly imageIds = new Map<string, string>();
  private readonly built: Array<{ engine: Engine; id: string }> = [];
  /** The docker providers of the last apply, by name. */
  private providers = new Map<string, ProviderPlan>();
  private readonly engines = new Engines();
  private readonly log: (line: string) => void;

  constructor(private readonly options: RealizerOptions) {
    this.log = options.log ?? (() => {});
  }

  /** Plans every resource of a record without touching Docker: throws on anything it would not apply. */
  plan(record: DeclaredResource[]): Map<string, PlannedResource> {
    const providers = providerPlans(record);
    // Each docker resource's provider first: a missing one is named as such, not as a missing dependency.
    for (const resource of record) this.engineOf(resource, providers);
    const plans = new Map<string, PlannedResource>();
    for (const resource of orderByDependencies(record)) {
      const key = keyOf(resource);
      if (plans.has(key)) throw new Error(`realizer: two resources named ${key} (the engine rejects duplicate URNs)`);
      const plan = this.planOne(resource);
      if (plan) plans.set(key, { resource, plan, engine: this.engineOf(resource, providers) });
    }
    return plans;
  }

  /**
   * The engine a docker resource goes to: its provider's (recorded by name; none = the default provider,
   * the local engine). Every other resource runs where its own plan says (a remote.Command's connection).
   */
  private engineOf(resource: DeclaredResource, providers: Map<string, ProviderPlan>): Engine {
    if (!resource.type.startsWith('docker:')) return LOCAL_ENGINE;
    const name = resource.options.provider;
    if (name === undefined) return LOCAL_ENGINE;
    const provider = providers.get(name);
    if (!provider) {
      throw new Error(
        `realizer: ${keyOf(resource)} names provider "${name}", which is not a ${DOCKER_PROVIDER} in the record ` +
          `(docker providers: ${[...providers.keys()].join(', ') || 'none'})`,
      );
    }
    return this.engines.forProvider(provider);
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
      case 'command:remote:Command':
        return planRemoteCommand(name, inputs);
      case DOCKER_PROVIDER:
        // A provider creates nothing; its inputs are read (and refused when unapplied) in providerPlans.
        return undefined;
      default:
        if (resource.custom === false || isComponentOrStack(type) || type === 'pulumi:providers:command') return undefined;
        throw new Error(
          `realizer: resource type ${type} ("${name}") is not realized; supported: Network, Volume, Image, Container, local.Command, remote.Command`,
        );
    }
  }

  /** Makes Docker match the record, as `pulumi up` would after a change of config or code. */
  async apply(record: DeclaredResource[], options: ApplyOptions = {}): Promise<ApplySummary> {
    const plans = this.plan(record);
    this.checkProviderChanges(providerPlans(record));
    const summary = emptySummary();
    if (options.refresh) await this.refresh();
    const { registration, deletes } = planSteps(
      this.live,
      [...plans.values()].map((p) => p.resource),
    );
    const previousDependencies = this.dependencies;
    this.dependencies = dependencyKeys(record);

    await this.runRegistration(registration, plans, summary);
    // The engine's final deletes, dependents first, each wave of independent deletes in parallel.
    const dependsOn = (key: string) => previousDependencies.get(key) ?? new Set<string>();
    for (const wave of deleteWaves(deletes, dependsOn)) {
      await Promise.all(
        wave.map(async (step) => {
          summary.steps.push(`${step.op} ${step.key}`);
          if (step.op === 'delete-replaced') {
            const old = this.replacedPending.find((o) => o.key === step.key)!;
            await this.remove(old, summary);
            this.replacedPending.splice(this.replacedPending.indexOf(old), 1);
          } else {
            await this.remove(this.live.get(step.key)!, summary);
            this.live.delete(step.key);
            summary.deleted.push(step.key);
          }
        }),
      );
    }
    return summary;
  }

  /**
   * The registration steps as the engine's step executor runs them: a resource's steps start once the
   * steps of everything it depends on are done, so independent ones (the replicas) run in parallel. After
   * a failure nothing new starts, what runs finishes, and the apply fails before any final delete.
   */
  private async runRegistration(registration: Step[], plans: Map<string, PlannedResource>, summary: ApplySummary): Promise<void> {
    const byKey = new Map<string, Step[]>();
    for (const step of registration) byKey.set(step.key, [...(byKey.get(step.key) ?? []), step]);
    const done = new Map<string, Promise<void>>();
    let failure: { error: unknown } | undefined;
    for (const [key, steps] of byKey) {
      const waitFor = [...(this.dependencies.get(key) ?? [])].flatMap((dep) => done.get(dep) ?? []);
      done.set(
        key,
        (async () => {
          await Promise.all(waitFor);
          for (const step of steps) {
            if (failure) return;
            summary.steps.push(`${step.op} ${step.key}`);
            try {
              await this.runStep(step, plans.get(key)!, summary);
            } catch (error) {
              failure ??= { error };
            }
          }
        })(),
      );
    }
    await Promise.all(done.values());
    if (failure) throw failure.error;
  }

  private async runStep(step: Step, planned: PlannedResource, summary: ApplySummary): Promise<void> {
    const { key, resource } = step;
    const { plan, engine } = planned;
    const old = this.live.get(key);
    switch (step.op) {
      case 'same':
        old!.resource = resource;
        summary.unchanged.push(key);
        return;
      case 'create':
        summary.created.push(key);
        await this.createLive({ key, resource, plan, engine });
        return;
      case 'update':
        await this.update(old!, resource, step.diff!, summary);
        summary.updated.push(key);
        return;
      case 'delete-replaced':
        // deleteBeforeReplace: the old copy goes before the new one is created.
        await this.remove(old!, summary);
        this.live.delete(key);
        return;
      case 'create-replacement':
        if (old) this.replacedPending.push(old);
        summary.replaced.push(key);
        try {
          await this.createLive({ key, resource, plan, engine });
        } catch (error) {
          // A replacement that could not even be created leaves the old copy where it was, in the state.
          if (old && !this.live.has(key)) {
            this.replacedPending.splice(this.replacedPending.indexOf(old), 1);
            this.live.set(key, old);
          }
          throw error;
        }
        return;
      case 'delete':
        throw new Error(`realizer: ${key}: a delete is never a registration step`);
    }
  }

  /** Creates an object and puts it in the state; a container that fails to start or become healthy stays there. */
  private async createLive(object: LiveObject): Promise<void> {
    this.live.set(object.key, object);
    try {
      object.id = await this.create(object);
    } catch (error) {
      if (!(error instanceof InitializationError)) this.live.delete(object.key);
      else object.initError = error.message;
      throw error;
    }
  }

  /** Removes everything realized so far, dependents first, as `pulumi destroy` does. */
  async destroy(): Promise<ApplySummary> {
    const summary = emptySummary();
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
    this.providers.clear();
    this.engines.close();
    if (errors.length) throw new Error(`realizer: destroy left errors:\n${errors.join('\n')}`);
    return summary;
  }

  /**
   * A provider whose inputs change under the same name: the engine asks the new provider's DiffConfig
   * whether it must be replaced, and if so replaces every resource it manages (pulumi/pulumi
   * pkg/resource/deploy/step_generator.go, providerChanged and calculateDependentReplacements: "If the
   * resource's provider is in the replace set, we must replace this resource"). What pulumi-docker's
   * DiffConfig answers for a new host is not emulated, so such a change is refused while anything uses it.
   * A resource that moves to a provider of another name is replaced (diff.ts).
   */
  private checkProviderChanges(now: Map<string, ProviderPlan>): void {
    for (const [name, provider] of now) {
      const before = this.providers.get(name);
      if (!before || JSON.stringify(before) === JSON.stringify(provider)) continue;
      const users = [...this.live.values()].filter((o) => o.resource.options.provider === name).map((o) => o.key);
      if (users.length > 0) {
        throw new Error(
          `realizer: docker provider "${name}" changes from ${JSON.stringify(before)} to ${JSON.stringify(provider)} while ` +
            `${users.length} resource(s) use it (${users.slice(0, 3).join(', ')}); the engine's answer depends on the ` +
            `provider's DiffConfig, which is not realized: give the new engine a provider of its own name`,
        );
      }
    }
    this.providers = now;
  }

  /** Docker name and id of each container in the state, by resource name, with any initialization error. */
  containers(): Array<{ resourceName: string; name: string; id: string; engine: Engine; initError?: string }> {
    return [...this.live.values()]
      .filter((o) => o.plan.kind === 'container' && o.id !== undefined)
      .map((o) => ({
        resourceName: o.resource.name,
        name: o.plan.name,
        id: o.id!,
        engine: o.engine,
        ...(o.initError ? { initError: o.initError } : {}),
      }));
  }

  /** Ids of every image this realizer built on the local engine: the provider never deletes them, so a test's clean-up does. */
  builtImages(): string[] {
    return [...new Set(this.built.filter((b) => !b.engine.host).map((b) => b.id))];
  }

  private async refresh(): Promise<void> {
    for (const object of [...this.live.values()].filter((o) => o.plan.kind === 'container')) {
      const state = (await inspect('container', object.id ?? object.plan.name, object.engine))?.State;
      if (!state) {
        this.log(`refresh: container ${object.plan.name} is gone; it leaves the state`);
        this.live.delete(object.key);
      } else if (!state.Running) {
        this.log(`refresh: container ${object.plan.name} is stopped; the provider's Read removes it and it leaves the state`);
        await docker(['rm', '-f', '-v', object.id!], { engine: object.engine });
        this.live.delete(object.key);
      }
    }
  }

  private async update(object: LiveObject, resource: DeclaredResource, diff: ResourceDiff, summary: ApplySummary): Promise<void> {
    this.log(`update ${object.plan.kind} ${object.plan.name}: ${diff.changed.join(', ') || '(no change)'}`);
    for (const input of diff.unapplied) summary.unapplied.push(`${object.key}: ${input}`);
    if (object.initError !== undefined && diff.changed.length === 0) {
      // The empty update the engine sends changes nothing in the provider: the container is not re-created.
      // Once it succeeds the state holds no initialization error (pulumi/pulumi pkg/resource/deploy/step.go, UpdateStep).
      this.log(`${object.plan.name}: the engine's empty update retries nothing (was: ${object.initError})`);
    }
    const plan = this.planOne(resource)!;
    if (plan.kind === 'image' || plan.kind === 'command') {
      // An image rebuilds under the same resource; a local.Command's Update re-runs its `create` (it
      // declares no `update`).
      object.id = await this.create({ ...object, resource, plan });
    } else if (plan.kind === 'remote-command') {
      // pulumi-command v1 remote/commandController.go Update: `update` if set, else `create`.
      const script = plan.update ?? plan.create;
      if (script) await runRemote(plan.connection, script, plan.stdin);
    } else if (plan.kind === 'container' && diff.update.length > 0) {
      await docker(['update', ...updateArgs(resource.inputs), object.id!], { engine: object.engine });
    }
    // Saved only once the provider succeeded; state-only and unapplied inputs change nothing on the engine.
    object.resource = resource;
    object.plan = plan;
    object.initError = undefined;
  }

  private async create(object: LiveObject): Promise<string | undefined> {
    const { plan, engine } = object;
    this.log(`create ${plan.kind} ${plan.name}${engine.host ? ` on ${engine.label}` : ''}`);
    const imageKey = (image: string) => `${engine.host ?? ''} ${image}`;
    switch (plan.kind) {
      case 'network':
      case 'volume':
        return (await docker(plan.createArgs, { engine })).trim();
      case 'image': {
        // On a remote engine the build context goes over ssh, and the image is built for that engine's platform.
        const id = (await docker(plan.buildArgs, { engine, timeoutMs: 300_000 })).trim();
        this.built.push({ engine, id });
        const declared = object.resource.outputs?.repoDigest;
        if (typeof declared === 'string') this.imageIds.set(imageKey(declared), id);
        return id;
      }
      case 'command':
        if (plan.create) await runCommand(plan, plan.create, 300_000);
        return undefined;
      case 'remote-command':
        if (plan.create) await runRemote(plan.connection, plan.create, plan.stdin);
        return undefined;
      case 'container':
        // Containers name an image by the id the program was given; the build behind it has the engine's id.
        return this.createContainer(
          object,
          planContainer(object.resource.name, object.resource.inputs, (image) => this.imageIds.get(imageKey(image)) ?? image),
        );
    }
  }

  private async createContainer(object: LiveObject, plan: ContainerPlan): Promise<string> {
    const { engine } = object;
    const id = (await docker(plan.createArgs, { engine })).trim();
    object.id = id;
    try {
      for (const network of plan.moreNetworks) {
        await docker(['network', 'connect', ...network.aliases.flatMap((a) => ['--alias', a]), network.name, id], { engine });
      }
      if (plan.start) await docker(['start', id], { engine });
      if (plan.waitHealthySeconds !== undefined) await waitHealthy(plan.name, plan.waitHealthySeconds, engine);
      return id;
    } catch (error) {
      // Like the provider (kreuzwerker resourceDockerContainerCreate sets the id before it starts and
      // waits): the container stays, and the engine keeps it in the state with an initialization error.
      throw new InitializationError(`realizer: container ${plan.name} was created but did not come up: ${String(error)}`);
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
    const { plan, engine } = object;
    this.log(`delete ${plan.kind} ${plan.name}`);
    switch (plan.kind) {
      case 'container': {
        const started = Date.now();
        const ref = object.id ?? plan.name;
        const removed: RemovedContainer = { name: plan.name, graceSeconds: plan.destroyGraceSeconds, stopMs: 0 };
        // The provider removes by force unless destroyGraceSeconds is set; then it stops with that grace first.
        if (plan.destroyGraceSeconds !== undefined) {
          await docker(['stop', '-t', String(plan.destroyGraceSeconds), ref], {
            engine,
            timeoutMs: (plan.destroyGraceSeconds + 30) * 1000,
          });
          removed.exitCode = (await inspect('container', ref, engine))?.State?.ExitCode;
        }
        removed.stopMs = Date.now() - started;
        await docker(['rm', '-f', ...(plan.removeVolumes ? ['-v'] : []), ref], { engine });
        summary.removedContainers.push(removed);
        return;
      }
      case 'network':
        await docker(['network', 'rm', plan.name], { engine });
        return;
      case 'volume':
        await docker(['volume', 'rm', plan.name], { engine });
        return;
      case 'image':
        // pulumi-docker provider/provider.go: Delete of an Image is a no-op; the image stays on the engine.
        this.log(`image ${plan.name} kept (the provider never deletes images)`);
        return;
      case 'command':
        if (plan.delete) await runCommand(plan, plan.delete);
        return;
      case 'remote-command':
        // pulumi-command v1 remote/commandController.go Delete: runs `delete` if set, with the state's connection.
        if (plan.delete) await runRemote(plan.connection, plan.delete, plan.stdin);
        return;
    }
  }
}

/** One of a local.Command's scripts, through its interpreter, in its dir with its environment. */
function runCommand(plan: CommandPlan, script: string, timeoutMs?: number): Promise<string> {
  const [interpreter, ...args] = plan.interpreter;
  return run(interpreter, [...args, script], { cwd: plan.dir, env: { ...process.env, ...plan.env }, timeoutMs });
}

async function waitHealthy(name: string, seconds: number, engine: Engine): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const state = (await inspect('container', name, engine))?.State;
    if (state?.Health?.Status === 'healthy' || (!state?.Health && state?.Running)) return;
    if (Date.now() > deadline)
      throw new Error(`realizer: container ${name} not healthy within ${seconds} s (state ${JSON.stringify(state)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface PlannedResource {
  resource: DeclaredResource;
  plan: Plan;
  engine: Engine;
}

/** The record's docker providers by name, each read through its own DeclaredInputs. */
function providerPlans(record: DeclaredResource[]): Map<string, ProviderPlan> {
  return new Map(record.filter((r) => r.type === DOCKER_PROVIDER).map((r) => [r.name, planDockerProvider(r.name, r.inputs)]));
}

/** Resolves a dependency reference (a name or a key) to resources; a component stands for all its descendants. */
function dependencyResolver(record: DeclaredResource[]): (ref: string) => DeclaredResource[] {
  const byName = new Map<string, DeclaredResource[]>();
  const children = new Map<string, DeclaredResource[]>();
  for (const r of record) {
    for (const ref of [r.name, keyOf(r)]) byName.set(ref, [...(byName.get(ref) ?? []), r]);
    if (r.options.parent) children.set(r.options.parent, [...(children.get(r.options.parent) ?? []), r]);
  }
  const descendants = (r: DeclaredResource): DeclaredResource[] =>
    r.custom === false ? (children.get(r.name) ?? []).flatMap((c) => [c, ...descendants(c)]) : [];
  // A provider creates nothing: waiting for it means waiting for what it waits for.
  const resolve = (ref: string): DeclaredResource[] => {
    const found = byName.get(ref) ?? byName.get(ref.split('::').pop()!);
    if (!found) throw new Error(`realizer: a dependency names ${ref}, which is not in the record`);
    return found.flatMap((r) => [
      r,
      ...descendants(r),
      ...(r.type.startsWith('pulumi:providers:') ? dependencyRefs(r).flatMap(resolve) : []),
    ]);
  };
  return resolve;
}

/**
 * What a resource waits for: its dependencies, and its explicit provider with what that provider waits for
 * (the engine registers a provider before any resource it manages, and a provider that depends on a
 * bootstrap command is created only after it).
 */
const dependencyRefs = (r: DeclaredResource): string[] => [
  ...(r.options.dependencies ?? r.options.dependsOn ?? []),
  ...(r.options.provider ? [`pulumi:providers:${r.type.split(':')[0]}::${r.options.provider}`] : []),
];

/** The keys each resource of a record depends on (explicitly or through its inputs). */
export function dependencyKeys(record: DeclaredResource[]): Map<string, Set<string>> {
  const resolve = dependencyResolver(record);
  return new Map(
    record.map((r) => [
      keyOf(r),
      new Set(
        dependencyRefs(r)
          .flatMap(resolve)
          .filter((d) => d !== r)
          .map(keyOf),
      ),
    ]),
  );
}

/**
 * Stable topological order: a resource comes after everything it depends on (explicitly or through its
 * inputs); depending on a component means depending on all of its descendants. Otherwise declaration order.
 */
export function orderByDependencies(record: DeclaredResource[]): DeclaredResource[] {
  const resolve = dependencyResolver(record);
  const ordered: DeclaredResource[] = [];
  const state = new Map<DeclaredResource, 'visiting' | 'done'>();
  const visit = (r: DeclaredResource) => {
    if (state.get(r) === 'done') return;
    if (state.get(r) === 'visiting') throw new Error(`realizer: dependency cycle through ${keyOf(r)}`);
    state.set(r, 'visiting');
    for (const ref of dependencyRefs(r)) for (const dep of resolve(ref)) if (dep !== r) visit(dep);
    state.set(r, 'done');
    ordered.push(r);
  };
  record.forEach(visit);
  return ordered;
}
