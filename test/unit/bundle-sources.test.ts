// What the stack hashes to notice a code change (lib/sources.ts BUNDLE_SOURCES) covers every project file
// esbuild puts into each bundle: a file left out would change the bundle without changing the image's
// SOURCE_HASH, and nothing would mark that image for a rebuild.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { build } from 'esbuild';
import { BUNDLE_SOURCES, type BundledPart } from '../../lib/sources';
import { REPO_ROOT } from '../helpers/record-stack';

/** Each part's entry points, as scripts/build.mjs bundles them. */
const targets = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'bundle-targets.json'), 'utf8')) as string[][];
const ENTRIES: Record<BundledPart, string[]> = { service: [], activity: [], balancer: [] };
for (const [part, entry, source = part] of targets) ENTRIES[part as BundledPart].push(`${source}/${entry}.ts`);

for (const part of Object.keys(ENTRIES) as BundledPart[]) {
  test(`every project file of the ${part} bundle is among its hashed sources`, async (t) => {
    const result = await build({
      absWorkingDir: REPO_ROOT,
      entryPoints: ENTRIES[part],
      bundle: true,
      platform: 'node',
      write: false,
      metafile: true,
      outdir: 'out',
      logLevel: 'silent',
      // The evidence page's assets are made by scripts/build.mjs from balancer/page/, inside the hashed folder.
      external: ['evidence-page:assets'],
    });
    const inputs = Object.keys(result.metafile.inputs).filter((file) => !file.includes('node_modules/'));
    const covered = (file: string) => BUNDLE_SOURCES[part].some((source) => file === source || file.startsWith(`${source}/`));
    t.true(inputs.length > 5, `${inputs.length} project files`);
    t.deepEqual(
      inputs.filter((file) => !covered(file.split(path.sep).join('/'))),
      [],
    );
  });
}
