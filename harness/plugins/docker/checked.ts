// What every docker resource's Check and Diff share: inputs the table (inputs.ts) does not know are refused,
// a plan that refuses a value is a failure, and the diff is the table's.
import { isUnknown, type CheckFailure, type DiffResult, type Props } from '../provider-server';
import { diffByRules, unknownInputs, type InputRule } from './inputs';

export interface CheckResult {
  inputs: Props;
  failures: CheckFailure[];
}

/**
 * Checks `inputs` (already given their defaults) against `rules`, then lets `plan` read them all: its
 * DeclaredInputs throws on a value or a nested key it does not apply. With a value not known yet (a
 * preview) the plan waits for the real check before the create.
 */
export function checkInputs(
  what: string,
  rules: Readonly<Record<string, InputRule>>,
  inputs: Props,
  plan: (inputs: Props) => unknown,
): CheckResult {
  const unknown = unknownInputs(rules, inputs);
  if (unknown.length > 0) {
    return {
      inputs,
      failures: unknown.map((property) => ({
        property,
        reason: `the docker stand-in does not support ${what} input "${property}"; supported: ${Object.keys(rules).join(', ')}`,
      })),
    };
  }
  if (isUnknown(inputs)) return { inputs, failures: [] };
  try {
    plan(inputs);
    return { inputs, failures: [] };
  } catch (error) {
    return { inputs, failures: [{ property: '', reason: error instanceof Error ? error.message : String(error) }] };
  }
}

export function diffInputs(rules: Readonly<Record<string, InputRule>>, olds: Props, news: Props): DiffResult {
  const { changed, replaces } = diffByRules(rules, olds, news);
  return { changed, replaces };
}

/** A docker CLI error that says the object is not there (removed by hand, or never made). */
export const isGone = (error: unknown): boolean => /no such (container|volume|network|object)|network \S+ not found/i.test(String(error));
