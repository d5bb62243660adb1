// Bundles the service (and its readiness probe), the activity service and the balancer into single files inside their own folders, so each
// folder is a self-contained Docker build context (no npm install inside an image).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

// The balancer's evidence page (balancer/page/) is built first, for browsers, and goes into the balancer's
// bundle as strings (the `evidence-page:assets` module, balancer/evidence-assets.d.ts): the image still
// copies one file, and no page file is read at run time.
const pageScript = await build({
  entryPoints: ['balancer/page/page.ts'],
  bundle: true,
  platform: 'browser',
  target: 'chrome110',
  format: 'iife',
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
});
const evidenceAssets = {
  name: 'evidence-page-assets',
  setup(b) {
    b.onResolve({ filter: /^evidence-page:assets$/ }, (args) => ({ path: args.path, namespace: 'evidence-page' }));
    b.onLoad({ filter: /.*/, namespace: 'evidence-page' }, async () => {
      const files = ['index.html', 'page.css', 'icon.svg'];
      const [html, css, icon] = await Promise.all(files.map((f) => fs.readFile(`balancer/page/${f}`, 'utf8')));
      const script = pageScript.outputFiles[0].text;
      return { contents: JSON.stringify({ html, css, icon, script }), loader: 'json' };
    });
  },
};

// Each entry [folder, entry, source] of bundle-targets.json: <source>/<entry>.ts (source defaults to the folder)
// becomes <folder>/dist/<entry>.js. The replica runtime's readiness probe is the Docker health check of both
// services' replicas (infra/replicas.ts), the balancer's health probe that of the balancer (infra/balancer.ts).
const targets = JSON.parse(await fs.readFile(new URL('./bundle-targets.json', import.meta.url), 'utf8'));
// Written aside and renamed over the old file: `npm run start:*` builds while other processes (tests, image
// builds) may be loading the same file, which must never be seen half-written.
async function writeWhole(file, contents) {
  const temp = `${file}.${process.pid}.tmp`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(temp, contents);
  await fs.rename(temp, file);
}

// The balancer reads nginx's configuration template beside its bundle (balancer/nginx-template.ts), and its
// image copies both.
await writeWhole('balancer/dist/nginx.conf.template', await fs.readFile('balancer/nginx.conf.template'));

await Promise.all(
  targets.map(async ([name, entry, source = name]) => {
    const result = await build({
      plugins: name === 'balancer' ? [evidenceAssets] : [],
      entryPoints: [`${source}/${entry}.ts`],
      outfile: `${name}/dist/${entry}.js`,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: 'inline',
      legalComments: 'none',
      // A bundle names each module by its path (comments, __commonJS keys, the inline source map). Through a
      // symlinked node_modules (a git worktree's, a scratch copy's) esbuild would name the link's target,
      // `../../elsewhere/node_modules/...`, so the same sources bundled in another folder gave another image id:
      // the system test's code deploy from a scratch copy replaced the activity replica it had not changed.
      preserveSymlinks: true,
      logLevel: 'warning',
      write: false,
    });
    for (const file of result.outputFiles) await writeWhole(file.path, file.contents);
  }),
);
