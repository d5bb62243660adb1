// What the engine does with a changed resource, taken from the providers' and the engine's source, for
// the realizer (and tested on its own in test/unit/realizer-diff.test.ts). Pure: no Docker here.
import { isDeepStrictEqual } from 'node:util';
import { CONTAINER, CONTAINER_INPUT_EFFECTS, IMAGE, normalInput } from '../../harness/plugins/docker/inputs';
import type { Inputs } from './plans';

/** A resource as the recorder saw it (see test/helpers/record-stack.ts). */
export interface DeclaredResource {
  type: string;
  name: string;
  inputs: Inputs;
  /** What the provider reported; an Image's repoDigest (its id) is what changes when its context does. */
  outputs?: Inputs;
  /** false for ComponentResources: they group children and have nothing to realize. */
  custom?: boolean;
  options: {
    /** Names (or URNs) of the resources this one depends on explicitly. */
    dependsOn?: string[];
    /** Everything it waits for: dependsOn plus the resources whose outputs feed its inputs. */
    dependencies?: string[];
    deleteBeforeReplace?: boolean;
    /** Input names whose change replaces the resource whatever the provider's diff says. */
    replaceOnChanges?: string[];
    parent?: string;
    /** Name of the explicit provider resource that manages it; absent = the package's default provider. */
    provider?: string;
  };
}

// What the provider does with each container input: the docker provider stand-in's table.
export { CONTAINER_INPUT_EFFECTS, type InputEffect } from '../../harness/plugins/docker/inputs';

export interface ResourceDiff {
  /** Top-level inputs (or `repoDigest` for an image) whose value changed. */
  changed: string[];
  replace: boolean;
  /** Container inputs the provider updates in place (docker update). */
  update: string[];
  /** Container inputs whose change is saved but never reaches the container. */
  unapplied: string[];
}

const LOCAL_COMMAND = 'command:local:Command';
const REMOTE_COMMAND = 'command:remote:Command';

/** How the engine and the provider treat the change from `old` to `now` (same type and name). */
export function diffResource(old: DeclaredResource, now: DeclaredResource): ResourceDiff {
  const keys = [...new Set([...Object.keys(old.inputs), ...Object.keys(now.inputs)])];
  const changed = keys.filter((k) => !isDeepStrictEqual(normalInput(old.inputs[k]), normalInput(now.inputs[k]))).sort();
  if (now.type === IMAGE && old.outputs?.repoDigest !== now.outputs?.repoDigest) changed.push('repoDigest');
  const result: ResourceDiff = { changed, replace: false, update: [], unapplied: [] };
  // pulumi/pulumi pkg/resource/deploy/step_generator.go diff → providerChanged: a resource whose provider
  // reference changes, and one of the two is not a default provider, is replaced (ReplaceKeys ["provider"]),
  // before and whatever the provider's own diff says. (A provider that keeps its name but changes its
  // config goes through its DiffConfig; the realizer refuses that: realize.ts checkProviderChanges.)
  if ((old.options.provider ?? '') !== (now.options.provider ?? '')) {
    result.changed = [...changed, 'provider'];
    result.replace = true;
    return result;
  }
  if (changed.length === 0) return result;
  // pulumi/pulumi pkg/resource/deploy/step_generator.go applyReplaceOnChanges: a listed input's change replaces.
  const replaceOnChanges = now.options.replaceOnChanges ?? [];
  const forced = (k: string) => replaceOnChanges.includes('*') || replaceOnChanges.includes(k);
  switch (now.type) {
    case CONTAINER:
      for (const key of changed) {
        const effect = CONTAINER_INPUT_EFFECTS[key];
        if (effect === undefined)
          throw new Error(`realizer: no diff rule for docker:Container input ${key}; add it to CONTAINER_INPUT_EFFECTS`);
        if (effect === 'replace' || forced(key)) result.replace = true;
        else if (effect === 'update') result.update.push(key);
        else if (effect === 'unapplied') result.unapplied.push(key);
      }
      return result;
    case IMAGE:
      // pulumi-docker provider/provider.go Diff reports changes without replace keys: Update rebuilds
      // under the same resource; the old image is never deleted (Delete is a no-op).
      result.replace = changed.some(forced);
      return result;
    case LOCAL_COMMAND:
    case REMOTE_COMMAND:
      // pulumi-command v1 local.Command and remote.Command: only a change of `triggers` replaces (common
      // ResourceInputs marks it replaceOnChanges); any other change, the connection's too, is an Update,
      // which runs `update`, or `create` when none is set.
      result.replace = changed.includes('triggers') || changed.some(forced);
      return result;
    default:
      // docker_network and docker_volume: every argument is ForceNew.
      result.replace = true;
      return result;
  }
}

export type StepOp = 'same' | 'create' | 'update' | 'create-replacement' | 'delete-replaced' | 'delete';

export interface Step {
  op: StepOp;
  key: string;
  /** The new declaration, or for deletes the old one. */
  resource: DeclaredResource;
  diff?: ResourceDiff;
}

/** What the state holds for a resource: its declaration as last applied, and any initialization error. */
export interface StateEntry {
  resource: DeclaredResource;
  initError?: string;
}

export const keyOf = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

/**
 * The steps of one `pulumi up`, in the order pulumi/pulumi's pkg/resource/deploy/step_generator.go emits
 * them: each registered resource (in dependency order) is created, left alone, updated, or replaced; a
 * replace with deleteBeforeReplace deletes the old copy first (DeleteReplacement then CreateReplacement),
 * one without creates the new copy and leaves the old one pending deletion; a resource whose create left
 * an initialization error and has no diff gets an empty update ("continue awaiting initialization").
 * Then GenerateDeletes deletes the pending old copies and the resources no longer declared, dependents
 * first (ScheduleDeletes runs each antichain of independent deletes in parallel: see deleteWaves).
 */
export function planSteps(state: Map<string, StateEntry>, registered: DeclaredResource[]): { registration: Step[]; deletes: Step[] } {
  const steps: Step[] = [];
  const pendingDeletes = new Set<string>();
  for (const resource of registered) {
    const key = keyOf(resource);
    const old = state.get(key);
    if (!old) {
      steps.push({ op: 'create', key, resource });
      continue;
    }
    const diff = diffResource(old.resource, resource);
    if (diff.replace) {
      if (resource.options.deleteBeforeReplace) {
        steps.push({ op: 'delete-replaced', key, resource: old.resource, diff }, { op: 'create-replacement', key, resource, diff });
      } else {
        steps.push({ op: 'create-replacement', key, resource, diff });
        pendingDeletes.add(key);
      }
    } else if (diff.changed.length > 0 || old.initError !== undefined) {
      steps.push({ op: 'update', key, resource, diff });
    } else {
      steps.push({ op: 'same', key, resource });
    }
  }
  const declared = new Set(registered.map(keyOf));
  const deletes: Step[] = [];
  for (const [key, entry] of [...state].reverse()) {
    if (pendingDeletes.has(key)) deletes.push({ op: 'delete-replaced', key, resource: entry.resource });
    else if (!declared.has(key)) deletes.push({ op: 'delete', key, resource: entry.resource });
  }
  return { registration: steps, deletes };
}

/**
 * The final deletes grouped as ScheduleDeletes groups them: a wave holds every delete no remaining one
 * depends on, and the engine runs a wave's deletes in parallel. `dependsOn(a)` lists the keys `a` waits for.
 */
export function deleteWaves(deletes: Step[], dependsOn: (key: string) => Set<string>): Step[][] {
  const waves: Step[][] = [];
  let left = [...deletes];
  while (left.length > 0) {
    const wave = left.filter((step) => !left.some((other) => other !== step && dependsOn(other.key).has(step.key)));
    if (wave.length === 0) throw new Error(`realizer: dependency cycle among deletes ${left.map((s) => s.key).join(', ')}`);
    waves.push(wave);
    left = left.filter((step) => !wave.includes(step));
  }
  return waves;
}
