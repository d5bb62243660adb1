import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

// What scripts/build.mjs bundles each entry from: its own folder, the shared lib/, and package.json
// (the version the service reports).
const INPUTS = { service: ['service', 'lib', 'package.json'], balancer: ['balancer', 'lib', 'package.json'] } as const;

function newestFile(relative: string): { file: string; mtimeMs: number } | undefined {
  const absolute = path.join(ROOT, relative);
  const stat = fs.statSync(absolute, { throwIfNoEntry: false });
  if (!stat) return undefined;
  if (!stat.isDirectory()) return { file: relative, mtimeMs: stat.mtimeMs };
  let newest: { file: string; mtimeMs: number } | undefined;
  for (const entry of fs.readdirSync(absolute, { withFileTypes: true })) {
    if (entry.isDirectory() && (entry.name === 'dist' || entry.name === 'node_modules')) continue;
    const found = newestFile(path.join(relative, entry.name));
    if (found && (!newest || found.mtimeMs > newest.mtimeMs)) newest = found;
  }
  return newest;
}

/**
 * The path of `<name>/dist/main.js`, once it is known to be built from the current sources. ava does
 * not build: a test file run alone (`npx ava FILE`) after a source change would otherwise test the
 * old code and pass or fail for the wrong reason.
 */
export function freshBundle(name: keyof typeof INPUTS): string {
  const bundle = path.join(ROOT, name, 'dist', 'main.js');
  const shown = path.relative(ROOT, bundle);
  const built = fs.statSync(bundle, { throwIfNoEntry: false });
  if (!built) throw new Error(`${shown} is missing: run \`npm run build\` first (\`npm test\` does it)`);
  for (const input of INPUTS[name]) {
    const newest = newestFile(input);
    if (newest && newest.mtimeMs > built.mtimeMs) {
      throw new Error(
        `${shown} is older than ${newest.file}: it would test stale code; run \`npm run build\` first (\`npm test\` does it)`,
      );
    }
  }
  return bundle;
}
