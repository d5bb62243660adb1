// Bundles the service (and its readiness probe) and the balancer into single files inside their own folders, so each
// folder is a self-contained Docker build context (no npm install inside an image).
import { build } from 'esbuild';

// Each entry becomes <folder>/dist/<entry>.js; the service's readiness probe is its Docker health check.
const targets = [
  ['service', 'main'],
  ['service', 'readiness-probe'],
  ['balancer', 'main'],
];
await Promise.all(
  targets.map(([name, entry]) =>
    build({
      entryPoints: [`${name}/${entry}.ts`],
      outfile: `${name}/dist/${entry}.js`,
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
