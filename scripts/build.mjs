// Bundles the service and the balancer into one file each, inside their own folders, so each
// folder is a self-contained Docker build context (no npm install inside an image).
import { build } from 'esbuild';

const targets = ['service', 'balancer'];
await Promise.all(
  targets.map((name) =>
    build({
      entryPoints: [`${name}/main.ts`],
      outfile: `${name}/dist/main.js`,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: 'inline',
      legalComments: 'none',
      logLevel: 'warning',
    }),
  ),
);
