// docker.Image, as pulumi-docker v5's native Image (provider/provider.go, provider/image.go): Check fills in
// the platform and a hash of the build context, any change rebuilds under the same resource, the id is
// the image name, `repoDigest` the local image id when nothing is pushed, and Delete leaves the image.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Props, ResourceHandlers } from '../provider-server';
import { docker, type Engine } from './cli';
import { checkInputs, diffInputs } from './checked';
import { IMAGE, INPUT_RULES } from './inputs';
import { hostPlatform, planImage } from './plans';
import { dockerIgnore } from './dockerignore';

const rules = INPUT_RULES[IMAGE];

/**
 * A hash of every file of the context that .dockerignore lets in (path, mode, content) and of the Dockerfile:
 * a changed file is a changed input, so the image rebuilds (pulumi-docker provider/provider.go, hashContext).
 */
export function hashContext(context: string, dockerfile: string): string {
  const hash = createHash('sha256');
  const ignored = dockerIgnore(context);
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && !ignored(path.relative(context, full).split(path.sep).join('/'))) {
        hash.update(`${path.relative(context, full)}\0${fs.statSync(full).mode}\0`);
        hash.update(fs.readFileSync(full));
      }
    }
  };
  walk(context);
  hash.update('dockerfile\0');
  hash.update(fs.readFileSync(dockerfile));
  return hash.digest('hex');
}

/** Check's defaults, as pulumi-docker's Check puts them in: build context and Dockerfile, platform, context hash. */
function withDefaults(news: Props, projectDir: string): Props {
  const build = { ...((news.build as Props | undefined) ?? {}) };
  const context = typeof build.context === 'string' ? build.context : '.';
  const dockerfile = typeof build.dockerfile === 'string' ? build.dockerfile : path.join(context, 'Dockerfile');
  const filled: Props = { ...build, context, dockerfile, platform: build.platform ?? hostPlatform() };
  const contextDir = path.resolve(projectDir, context);
  const dockerfilePath = path.resolve(projectDir, dockerfile);
  if (fs.existsSync(contextDir) && fs.existsSync(dockerfilePath)) filled.contextDigest = hashContext(contextDir, dockerfilePath);
  return { ...news, buildOnPreview: news.buildOnPreview ?? false, build: filled };
}

export function imageHandlers(engine: () => Engine | undefined, projectDir: string): ResourceHandlers {
  const build = async (news: Props, previousId?: unknown): Promise<Props> => {
    const plan = planImage(String(news.imageName), news, projectDir);
    // A rebuild takes its cache from the image it replaces only: the classic builder otherwise reuses the first
    // matching layer of any image on the engine (another stack's identical build, picked in map order), and
    // identical sources could get another id and replace containers for nothing (moby daemon/images/cache.go).
    const args = [...plan.buildArgs];
    if (typeof previousId === 'string' && previousId.startsWith('sha256:')) args.splice(args.length - 1, 0, '--cache-from', previousId);
    // No buildx client here: the classic builder (DOCKER_BUILDKIT=0), which builds these Dockerfiles alike.
    // The real provider builds with BuildKit unless builderVersion is BuilderV1 (provider/image.go, defaultBuilder).
    const id = (await docker(args, { engine: engine(), env: { ...process.env, DOCKER_BUILDKIT: '0' }, timeoutMs: 600_000 })).trim();
    const given = news.build as Props;
    // Outputs as provider/image.go's dockerBuild reports them; with skipPush, repoDigest is the local image id.
    return {
      ...news,
      baseImageName: news.imageName,
      context: given.context,
      dockerfile: given.dockerfile,
      platform: given.platform,
      registryServer: '',
      repoDigest: id,
    };
  };
  return {
    check: (news) => {
      const inputs = news.build === undefined || typeof news.build === 'object' ? withDefaults(news, projectDir) : news;
      return checkInputs('docker:Image', rules, inputs, (values) => planImage(String(values.imageName), values, projectDir));
    },
    diff: (_id, olds, news) => diffInputs(rules, olds, news),
    async create(news) {
      return { id: String(news.imageName), outs: await build(news) };
    },
    // provider.go Read returns the state as it is: an image is not looked up.
    read: (id, props, inputs) => Promise.resolve({ id, props, inputs }),
    update: (_id, olds, news) => build(news, olds.repoDigest),
    // provider.go Delete is a no-op: images stay on the engine.
    delete: () => Promise.resolve(),
  };
}
