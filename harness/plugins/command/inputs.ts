// Check and Diff of a Command's inputs, both read from the behaviour table (behaviour.ts).
import { isUnknown, type CheckFailure, type DiffResult, type Props } from '../provider-server';
import { CONNECTION, type BehaviourTable, type InputBehaviour } from './behaviour';

/** The wire form of a secret: pulumi/pulumi sdk/go/common/resource/properties.go, SecretSig. */
const SIG_KEY = '4dabf18193072939515e22adb298388d';
const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';

export function secret(value: unknown): Props {
  return { [SIG_KEY]: SECRET_SIG, value };
}

function isSecret(value: unknown): value is { value: unknown } {
  return value !== null && typeof value === 'object' && (value as Props)[SIG_KEY] === SECRET_SIG;
}

/** The value with every secret wrapper taken off. */
export function reveal(value: unknown): unknown {
  if (isSecret(value)) return reveal(value.value);
  if (Array.isArray(value)) return value.map(reveal);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  return value;
}

const LOGGING_VALUES = ['stdout', 'stderr', 'stdoutAndStderr', 'none'];

function isRecord(value: unknown): value is Props {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Why `value` does not fit `type` (as the provider's decoder would refuse it), or undefined. */
function typeProblem(type: InputBehaviour['type'], value: unknown): string | undefined {
  const fits: Record<InputBehaviour['type'], () => boolean> = {
    string: () => typeof value === 'string',
    strings: () => Array.isArray(value) && value.every((v) => typeof v === 'string' || isUnknown(v)),
    list: () => Array.isArray(value),
    stringMap: () => isRecord(value) && Object.values(value).every((v) => typeof v === 'string' || isUnknown(v)),
    boolean: () => typeof value === 'boolean',
    number: () => typeof value === 'number',
    integer: () => Number.isInteger(value),
    logging: () => typeof value === 'string' && LOGGING_VALUES.includes(value),
    connection: () => isRecord(value),
    object: () => isRecord(value),
  };
  if (fits[type]()) return undefined;
  const expected = type === 'logging' ? `one of ${LOGGING_VALUES.join(', ')}` : `a ${type}`;
  return `expected ${expected}, got ${JSON.stringify(value)}`;
}

/**
 * Validates `news` against `table` as the provider's Check does: an input it does not know, a value of the
 * wrong shape or a missing required input is a failure naming it; defaults are filled in and `secret`
 * inputs are marked secret. `what` names the resource type in messages; `prefix` is the path of a nested object.
 */
export function checkInputs(table: BehaviourTable, news: Props, what: string, prefix = ''): { inputs: Props; failures: CheckFailure[] } {
  const inputs: Props = {};
  const failures: CheckFailure[] = [];
  for (const [key, raw] of Object.entries(news)) {
    if (raw === null || raw === undefined) continue;
    const property = `${prefix}${key}`;
    const behaviour = table[key];
    if (!behaviour) {
      failures.push({ property, reason: `${what} has no input "${property}"; its inputs are ${Object.keys(table).join(', ')}` });
      continue;
    }
    if (behaviour.refused) {
      failures.push({ property, reason: `the command stand-in does not implement ${what} "${property}": ${behaviour.refused}` });
      continue;
    }
    let value = raw;
    if (!isUnknown(raw)) {
      const problem = typeProblem(behaviour.type, raw);
      if (problem) {
        failures.push({ property, reason: `${what} "${property}": ${problem}` });
        continue;
      }
      if (behaviour.type === 'connection') {
        const nested = checkInputs(CONNECTION, raw as Props, what, `${property}.`);
        failures.push(...nested.failures);
        value = nested.inputs;
      }
    }
    inputs[key] = behaviour.secret ? secret(value) : value;
  }
  for (const [key, behaviour] of Object.entries(table)) {
    if (key in inputs) continue;
    if (behaviour.default !== undefined) inputs[key] = behaviour.default;
    else if (behaviour.required) failures.push({ property: `${prefix}${key}`, reason: `${what} needs "${prefix}${key}"` });
  }
  return { inputs, failures };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? undefined) === (b ?? undefined);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => sameValue(a[k], b[k]));
  }
  return a === b;
}

/**
 * The inputs of `table` whose value differs between the state (`olds`, which holds the inputs beside the
 * outputs) and `news`; those whose behaviour is `replace` replace the resource. An unknown value differs.
 */
export function diffInputs(table: BehaviourTable, olds: Props, news: Props): DiffResult {
  const changed = Object.keys(table).filter((key) => !sameValue(reveal(olds[key]), reveal(news[key])));
  return { changed, replaces: changed.filter((key) => table[key].change === 'replace') };
}
