// The mutation list stays applicable as the code moves: every fault's file exists and its search text occurs
// exactly once there, and every test it names exists. `npm run test:mutations` itself runs the tests against
// the broken copies; this only keeps the list from rotting between its runs.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { REPO_ROOT } from '../helpers/record-stack';
import { FAULTS } from '../mutations/faults';

test('every fault patches text that is there once, and names tests that exist', (t) => {
  const problems: string[] = [];
  for (const fault of FAULTS) {
    for (const patch of fault.patches) {
      const file = path.join(REPO_ROOT, patch.file);
      if (!fs.existsSync(file)) {
        problems.push(`${fault.id}: ${patch.file} does not exist`);
        continue;
      }
      const found = fs.readFileSync(file, 'utf8').split(patch.search).length - 1;
      if (found !== 1) problems.push(`${fault.id}: its search text occurs ${found} times in ${patch.file}`);
    }
    for (const testFile of fault.tests) {
      if (!fs.existsSync(path.join(REPO_ROOT, testFile))) problems.push(`${fault.id}: test ${testFile} does not exist`);
    }
  }
  t.true(FAULTS.length > 10, `${FAULTS.length} faults`);
  t.deepEqual(problems, []);
});
