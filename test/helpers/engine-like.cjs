// Two rules of the real Pulumi engine and provider that the mock recording (record-stack.ts) follows: which
// entry the engine loads, and how an image's id follows its build inputs.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
// Loaded under tsx, as every test is: the one .dockerignore reader, shared with the docker stand-in.
const { dockerIgnore } = require('../../harness/plugins/docker/dockerignore');

/**
 * Where the engine runs the program and what it asks the Node language host to load, as pulumi/pulumi's
 * pkg/engine/project.go getPwdMain decides: no `main` (or a folder) runs in that folder with the entry
 * "."; a file runs in the file's own folder. The language host (sdk/nodejs cmd/run/run.js) then resolves
 * "." through package.json (`exports`, else `main`) and reads tsconfig.json from that working directory.
 */
function engineEntry(projectDir) {
  const yaml = require(path.join(projectDir, 'node_modules/js-yaml'));
  const project = yaml.load(fs.readFileSync(path.join(projectDir, 'Pulumi.yaml'), 'utf8'));
  const main = path.resolve(projectDir, typeof project.main === 'string' && project.main !== '' ? project.main : '.');
  const isDir = fs.statSync(main).isDirectory();
  const pwd = isDir ? main : path.dirname(main);
  let program = isDir ? pwd : main;
  if (isDir) {
    const pkg = JSON.parse(fs.readFileSync(path.join(pwd, 'package.json'), 'utf8'));
    const entry = typeof pkg.exports === 'string' ? pkg.exports : pkg.main;
    if (entry) program = path.resolve(pwd, entry);
  }
  return { pwd, program: require.resolve(program), hasTsconfig: fs.existsSync(path.join(pwd, 'tsconfig.json')) };
}

// Folders a bundled role's context holds but its image id does not depend on at record time: `dist` is
// made from the sources by the bundle step during the deploy, and SOURCE_HASH (a build arg) stands for it.
const DERIVED = new Set(['dist', 'node_modules']);

function hashTree(root, relative, accumulator, ignored = dockerIgnore(root)) {
  const absolute = path.join(root, relative);
  const stat = fs.lstatSync(absolute);
  if (stat.isDirectory()) {
    for (const entry of fs.readdirSync(absolute).sort()) {
      if (!(DERIVED.has(entry) && fs.lstatSync(path.join(absolute, entry)).isDirectory()))
        hashTree(root, path.join(relative, entry), accumulator, ignored);
    }
    return;
  }
  if (ignored(relative.split(path.sep).join('/'))) return;
  const content = stat.isSymbolicLink() ? fs.readlinkSync(absolute) : fs.readFileSync(absolute);
  accumulator
    .update(relative.split(path.sep).join('/'))
    .update(String(stat.mode))
    .update(crypto.createHash('sha256').update(content).digest())
    .update('\0');
}

/**
 * The `repoDigest` a docker.Image with skipPush reports: the local image id (pulumi-docker provider/image.go,
 * "We set repoDigest to the image ID returned from docker inspect"). The mock cannot build, so it derives a
 * stand-in id from what the real one depends on: the Dockerfile, the build args, target and platform, and
 * the context's files (the provider's own contextDigest, provider/provider.go hashContext). Never the tag.
 */
function mockImageId(inputs, projectDir) {
  const build = inputs.build || {};
  const context = path.resolve(projectDir, build.context || '.');
  const dockerfile = build.dockerfile ? path.resolve(projectDir, build.dockerfile) : path.join(context, 'Dockerfile');
  const hash = crypto.createHash('sha256');
  hash.update(fs.existsSync(dockerfile) ? fs.readFileSync(dockerfile) : '').update('\0');
  const args = build.args || {};
  hash.update(
    JSON.stringify({
      args: Object.keys(args)
        .sort()
        .map((k) => [k, args[k]]),
      target: build.target,
      platform: build.platform,
    }),
  );
  if (fs.existsSync(context)) hashTree(context, '', hash);
  return `sha256:${hash.digest('hex')}`;
}

module.exports = { engineEntry, mockImageId };
