// The mutation list stays applicable as the code moves: every fault's file exists and its search text occurs
// exactly once there, and every test it names exists. `npm run test:mutations` itself runs the tests against
// the broken copies; this only keeps the list from rotting between its runs.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { REPO_ROOT } from '../helpers/record-stack';
import { FAULTS, patchProblem } from '../mutations/faults';

test('every fault patches text that is there once, and names tests that exist', (t) => {
  const problems: string[] = [];
  for (const fault of FAULTS) {
    for (const patch of fault.patches) {
      const problem = patchProblem(REPO_ROOT, patch);
      if (problem) problems.push(`${fault.id}: ${problem}`);
    }
    for (const testFile of fault.tests) {
      if (!fs.existsSync(path.join(REPO_ROOT, testFile))) problems.push(`${fault.id}: test ${testFile} does not exist`);
    }
  }
  t.true(FAULTS.length > 10, `${FAULTS.length} faults`);
  t.deepEqual(problems, []);
});
