// Loads the program the way the Pulumi CLI does: the engine picks the working directory and entry from
// Pulumi.yaml (engineEntry: pkg/engine/project.go's rule), and the Node.js language host (@pulumi/pulumi's
// cmd/run/run.js) registers TypeScript through its vendored ts-node 7 with the project's typescript and
// the tsconfig.json of that working directory merged over its defaults (skipped when there is none), type
// checking on. It then runs the program under the SDK's mock runtime and prints the stack outputs, the
// working directory and whether a tsconfig.json was loaded, as JSON on the last line.
// Run with plain node (no tsx), from anywhere: node test/helpers/load-like-pulumi.cjs '{"replicas":"2"}' [projectDir]
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { engineEntry, mockImageId } = require('./engine-like.cjs');

const root = path.resolve(process.argv[3] || path.join(__dirname, '..', '..'));
const { pwd, program } = engineEntry(root);
process.chdir(pwd);
const tsutils = require(path.join(root, 'node_modules/@pulumi/pulumi/tsutils'));
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
const tsConfigPath = 'tsconfig.json';
const skipProject = !fs.existsSync(tsConfigPath);
const compilerOptions = tsutils.loadTypeScriptCompilerOptions(tsConfigPath);
require(tsnodeRequire).register({
  compiler: typescriptRequire,
  transpileOnly: compilerOptions.noCheck,
  project: tsConfigPath,
  skipProject,
  // run.js's CommonJS branch (not an ES module package): its defaults, the tsconfig's options over them.
  compilerOptions: { target: 'ES2020', module: 'nodenext', moduleResolution: 'nodenext', sourceMap: 'true', ...compilerOptions },
});

const pulumi = require(path.join(root, 'node_modules/@pulumi/pulumi'));
const yaml = require(path.join(root, 'node_modules/js-yaml'));
const project = yaml.load(fs.readFileSync(path.join(root, 'Pulumi.yaml'), 'utf8'));
const config = JSON.parse(process.argv[2] || '{}');

(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({
        id: `${args.name}-id`,
        state: args.type === 'docker:index/image:Image' ? { ...args.inputs, repoDigest: mockImageId(args.inputs, root) } : args.inputs,
      }),
      call: (args) => args.inputs,
    },
    project.name,
    'dev',
    false,
  );
  pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${project.name}:${k}`, String(v)])));
  const outputs = await pulumi.runtime.runInPulumiStack(async () => require(program));
  const typescript = require(require.resolve(typescriptRequire, { paths: [root] })).version;
  console.log(JSON.stringify({ tsNode: tsnodeRequire, typescript, pwd: process.cwd(), tsconfigLoaded: !skipProject, outputs }));
})().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
