// A copy of the project in a temporary folder, for tests that change its code (a code deploy) while
// other test files keep bundling and recording the working tree. node_modules is linked, not copied.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './record-stack';

const SKIPPED = new Set(['node_modules', '.git', 'build', '.pulumi', 'dist', '.tools']);
/** Linked into the copy, not copied: the dependencies, and the Pulumi CLI the project built (npm run tools). */
const LINKED = ['node_modules', '.tools'];

export interface ScratchCopy {
  dir: string;
  /** Replaces `from` with `to` in one file of the copy; throws when `from` is not there. */
  edit(file: string, from: string, to: string): void;
  remove(): void;
}

export function scratchCopy(prefix = 'cnp-scratch-'): ScratchCopy {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.cpSync(REPO_ROOT, dir, { recursive: true, filter: (source) => !SKIPPED.has(path.basename(source)) || source === REPO_ROOT });
  for (const name of LINKED) {
    if (fs.existsSync(path.join(REPO_ROOT, name))) fs.symlinkSync(path.join(REPO_ROOT, name), path.join(dir, name));
  }
  return {
    dir,
    edit(file, from, to) {
      const target = path.join(dir, file);
      const text = fs.readFileSync(target, 'utf8');
      if (!text.includes(from)) throw new Error(`scratch copy: ${file} does not contain ${JSON.stringify(from)}`);
      fs.writeFileSync(target, text.replace(from, to));
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
