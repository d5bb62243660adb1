import fs from 'node:fs';
import path from 'node:path';
import { bundleFiles, type BundledPart } from '../lib/sources';

const ROOT = path.resolve(__dirname, '..');

/** The newest of the files a part's bundle is built from (the same list the stack hashes to rebuild it). */
function newestInput(name: BundledPart): { file: string; mtimeMs: number } | undefined {
  let newest: { file: string; mtimeMs: number } | undefined;
  for (const file of bundleFiles(ROOT, name)) {
    const { mtimeMs } = fs.statSync(path.join(ROOT, file));
    if (!newest || mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  }
  return newest;
}

/**
 * The path of `<name>/dist/main.js`, once it is known to be built from the current sources. ava does
 * not build: a test file run alone (`npx ava FILE`) after a source change would otherwise test the
 * old code and pass or fail for the wrong reason.
 */
export function freshBundle(name: BundledPart): string {
  const bundle = path.join(ROOT, name, 'dist', 'main.js');
  const shown = path.relative(ROOT, bundle);
  const built = fs.statSync(bundle, { throwIfNoEntry: false });
  if (!built) throw new Error(`${shown} is missing: run \`npm run build\` first (\`npm test\` does it)`);
  const newest = newestInput(name);
  if (newest && newest.mtimeMs > built.mtimeMs) {
    throw new Error(`${shown} is older than ${newest.file}: it would test stale code; run \`npm run build\` first (\`npm test\` does it)`);
  }
  return bundle;
}
