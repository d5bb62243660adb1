// Loads the program the way the Pulumi CLI's Node.js language host does (@pulumi/pulumi's
// cmd/run/run.js): TypeScript through ts-node as that host registers it (its vendored ts-node 7,
// the project's typescript, tsconfig.json merged over its defaults, type checking on), then runs it
// under the SDK's mock runtime and prints the stack outputs as JSON on the last line.
// Run with plain node (no tsx), from anywhere: node test/helpers/load-like-pulumi.cjs '{"replicas":"2"}'
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const root = path.resolve(__dirname, '..', '..');
process.chdir(root);
const tsutils = require(path.join(root, 'node_modules/@pulumi/pulumi/tsutils'));
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
const compilerOptions = tsutils.loadTypeScriptCompilerOptions('tsconfig.json');
require(tsnodeRequire).register({
  compiler: typescriptRequire,
  transpileOnly: undefined,
  project: 'tsconfig.json',
  skipProject: !fs.existsSync('tsconfig.json'),
  compilerOptions: { target: 'ES2020', module: 'nodenext', moduleResolution: 'nodenext', sourceMap: 'true', ...compilerOptions },
});

const pulumi = require(path.join(root, 'node_modules/@pulumi/pulumi'));
const yaml = require(path.join(root, 'node_modules/js-yaml'));
const project = yaml.load(fs.readFileSync('Pulumi.yaml', 'utf8'));
const config = JSON.parse(process.argv[2] || '{}');

(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({ id: `${args.name}-id`, state: { ...args.inputs, repoDigest: args.inputs.imageName } }),
      call: (args) => args.inputs,
    },
    project.name,
    'dev',
    false,
  );
  pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${project.name}:${k}`, String(v)])));
  const outputs = await pulumi.runtime.runInPulumiStack(async () => require(path.resolve(root, project.main)));
  console.log(JSON.stringify({ tsNode: tsnodeRequire, typescript: require(require.resolve(typescriptRequire, { paths: [root] })).version, outputs }));
})().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
