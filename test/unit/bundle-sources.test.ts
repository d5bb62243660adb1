// What the stack hashes to notice a code change (lib/sources.ts bundleFiles) is exactly right for lib/, and
// covers every project file esbuild puts into each bundle: a file left out would change the bundle without
// changing the image's SOURCE_HASH, and nothing would mark that image for a rebuild; a lib/ file no bundle
// imports, hashed, would roll every replica when edited.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { build } from 'esbuild';
import { bundleFiles, LIB_NOT_BUNDLED, type BundledPart } from '../../lib/sources';
import { REPO_ROOT } from '../helpers/record-stack';

/** Each part's entry points, as scripts/build.mjs bundles them. */
const targets = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'bundle-targets.json'), 'utf8')) as string[][];
const ENTRIES: Record<BundledPart, string[]> = { service: [], activity: [], balancer: [] };
for (const [part, entry, source = part] of targets) ENTRIES[part as BundledPart].push(`${source}/${entry}.ts`);
const PARTS = Object.keys(ENTRIES) as BundledPart[];

/** The project files esbuild puts into a part's bundle. */
async function bundledFiles(part: BundledPart): Promise<string[]> {
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
  return Object.keys(result.metafile.inputs)
    .filter((file) => !file.includes('node_modules/'))
    .map((file) => file.split(path.sep).join('/'));
}

for (const part of PARTS) {
  test(`every project file of the ${part} bundle is among its hashed sources`, async (t) => {
    const inputs = await bundledFiles(part);
    const hashed = new Set(bundleFiles(REPO_ROOT, part).map((file) => file.split(path.sep).join('/')));
    t.true(inputs.length > 5, `${inputs.length} project files`);
    t.deepEqual(
      inputs.filter((file) => !hashed.has(file)),
      [],
    );
  });
}

test('LIB_NOT_BUNDLED names exactly the lib/ files no bundle imports', async (t) => {
  const bundled = new Set((await Promise.all(PARTS.map(bundledFiles))).flat());
  const unbundled = fs
    .readdirSync(path.join(REPO_ROOT, 'lib'))
    .map((file) => `lib/${file}`)
    .filter((file) => !bundled.has(file));
  t.deepEqual([...LIB_NOT_BUNDLED].sort(), unbundled.sort());
});
