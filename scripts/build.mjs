// Bundles the service and the balancer into one file each, inside their own folders, so each
// folder is a self-contained Docker build context (no npm install inside an image).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const targets = ['service', 'balancer'];
await Promise.all(
  targets.map(async (name) => {
    const result = await build({
      entryPoints: [`${name}/main.ts`],
      outfile: `${name}/dist/main.js`,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: 'inline',
      legalComments: 'none',
      logLevel: 'warning',
      write: false,
    });
    // Written aside and renamed over the bundle: `npm run start:*` builds while other processes (tests,
    // image builds) may be loading the same file, which must never be seen half-written.
    for (const file of result.outputFiles) {
      const temp = `${file.path}.${process.pid}.tmp`;
      await fs.mkdir(path.dirname(file.path), { recursive: true });
      await fs.writeFile(temp, file.contents);
      await fs.rename(temp, file.path);
    }
  }),
);
