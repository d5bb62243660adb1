// The realizer against the real Docker engine, with small hand-made records on the offline base image.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker, inspect } from './docker';
import { BASE_IMAGE, PROJECT_DIR, ensureOfflineImages } from './images';
import { Realizer, type DeclaredResource } from './realize';

const tag = `cnp-realizer-${randomBytes(3).toString('hex')}`;
const realizers: Realizer[] = [];

function newRealizer(log?: (line: string) => void): Realizer {
  const realizer = new Realizer({ projectDir: PROJECT_DIR, log });
  realizers.push(realizer);
  return realizer;
}

const network = (): DeclaredResource => ({
  type: 'docker:index/network:Network',
  name: 'net',
  inputs: { name: `${tag}-net`, labels: [{ label: 'cnp.test', value: tag }] },
  options: {},
});

// A process that exits 0 on SIGTERM, so a graceful stop is told apart from a kill.
const sleeper = (name: string, inputs: Record<string, unknown> = {}, options: DeclaredResource['options'] = {}): DeclaredResource => ({
  type: 'docker:index/container:Container',
  name,
  inputs: {
    image: BASE_IMAGE,
    entrypoints: ['/bin/sh', '-c'],
    command: ['trap "exit 0" TERM; sleep 300 & wait'],
    labels: [{ label: 'cnp.test', value: tag }],
    networksAdvanced: [{ name: `${tag}-net`, aliases: [name] }],
    ...inputs,
  },
  options: { dependsOn: ['net'], ...options },
});

async function testObjects(): Promise<string> {
  const [containers, networks] = await Promise.all([
    docker(['ps', '-a', '--filter', `label=cnp.test=${tag}`, '--format', '{{.Names}}']),
    docker(['network', 'ls', '--filter', `label=cnp.test=${tag}`, '--format', '{{.Name}}']),
  ]);
  return (containers + networks).split('\n').filter(Boolean).sort().join(' ');
}

test.before(async () => {
  await ensureOfflineImages();
});

test.after.always(async () => {
  for (const realizer of realizers) await realizer.destroy().catch(() => {});
  // Belt and braces: anything labelled for this run, whatever happened to the realizers.
  const leftovers = (await docker(['ps', '-aq', '--filter', `label=cnp.test=${tag}`])).split('\n').filter(Boolean);
  if (leftovers.length) await docker(['rm', '-f', '-v', ...leftovers]);
  await docker(['network', 'rm', `${tag}-net`]).catch(() => {});
});

test.serial('an unchanged input keeps the container; a changed one replaces it, new before old', async (t) => {
  const lines: string[] = [];
  const realizer = newRealizer((line) => lines.push(line));
  const first = await realizer.apply([network(), sleeper('a', { envs: ['MODE=one'] }), sleeper('b', { envs: ['MODE=one'] })]);
  t.deepEqual(first.created.length, 3);
  const before = Object.fromEntries(realizer.containers().map((c) => [c.resourceName, c]));
  const a = await inspect('container', before.a.id);
  t.true(a?.State?.Running);
  t.deepEqual(a?.Config?.Env?.includes('MODE=one'), true);

  const same = await realizer.apply([network(), sleeper('a', { envs: ['MODE=one'] }), sleeper('b', { envs: ['MODE=one'] })]);
  t.deepEqual(same.created, []);
  t.deepEqual(same.replaced, []);
  t.is(same.unchanged.length, 3);
  t.is(realizer.containers().find((c) => c.resourceName === 'a')!.id, before.a.id);

  lines.length = 0;
  const changed = await realizer.apply([network(), sleeper('a', { envs: ['MODE=one'] }), sleeper('b', { envs: ['MODE=two'] })]);
  t.deepEqual(changed.replaced, ['docker:index/container:Container::b']);
  const after = Object.fromEntries(realizer.containers().map((c) => [c.resourceName, c]));
  t.is(after.a.id, before.a.id, 'the unchanged container keeps its id');
  t.not(after.b.id, before.b.id, 'the changed container is a new one');
  t.true((await inspect('container', after.b.id))?.Config?.Env?.includes('MODE=two'));
  t.is(await inspect('container', before.b.id), undefined, 'the old copy is gone');
  // Auto-named (no name input): the new copy is created before the old one is deleted.
  t.regex(lines.join('\n'), /create container b-\w+\ndelete container b-\w+/);
  // Forced removal (no destroyGraceSeconds): no graceful stop recorded.
  t.is(changed.removedContainers[0].exitCode, undefined);
  await realizer.destroy();
  t.is(await testObjects(), '');
});

test.serial('deleteBeforeReplace removes first; destroyGraceSeconds stops with its grace before removal', async (t) => {
  const lines: string[] = [];
  const realizer = newRealizer((line) => lines.push(line));
  const fixed = (mode: string) =>
    sleeper(
      'fixed',
      { name: `${tag}-fixed`, envs: [`MODE=${mode}`], destroyGraceSeconds: 10 },
      { dependsOn: ['net'], deleteBeforeReplace: true },
    );
  await realizer.apply([network(), fixed('one')]);
  lines.length = 0;
  const changed = await realizer.apply([network(), fixed('two')]);
  t.deepEqual(changed.replaced, ['docker:index/container:Container::fixed']);
  t.deepEqual(lines, [`delete container ${tag}-fixed`, `create container ${tag}-fixed`]);
  const stop = changed.removedContainers[0];
  t.is(stop.graceSeconds, 10);
  t.is(stop.exitCode, 0, 'the process ended on SIGTERM within the grace, not by SIGKILL');
  t.true(stop.stopMs < 10_000);

  // Without deleteBeforeReplace a fixed name cannot be created before its old copy goes: the engine fails too.
  const clash = sleeper('fixed', { name: `${tag}-fixed`, envs: ['MODE=three'] });
  await t.throwsAsync(realizer.apply([network(), clash]), { message: /already in use/ });
  await realizer.destroy();
  t.is(await testObjects(), '');
});

test.serial('a declared input the realizer does not apply is refused before anything is created', async (t) => {
  const realizer = newRealizer();
  const error = await t.throwsAsync(realizer.apply([network(), sleeper('a', { privileged: true })]));
  t.regex(error.message, /docker:Container "a" declares privileged=true, which is not applied/);
  const nested = await t.throwsAsync(realizer.apply([network(), sleeper('a', { ports: [{ internal: 80, external: 8080, bogus: 1 }] })]));
  t.regex(nested.message, /ports\[0\] declares bogus=1/);
  await t.throwsAsync(
    realizer.apply([{ type: 'docker:index/remoteImage:RemoteImage', name: 'x', inputs: { name: 'nginx' }, options: {} }]),
    {
      message: /RemoteImage .* is not realized/,
    },
  );
  t.is(await testObjects(), '', 'nothing was created');
});

test.serial('removing a resource from the record removes it; destroy leaves nothing', async (t) => {
  const realizer = newRealizer();
  await realizer.apply([network(), sleeper('a'), sleeper('b', { destroyGraceSeconds: 5 })]);
  const kept = realizer.containers().find((c) => c.resourceName === 'a')!.id;
  const shrunk = await realizer.apply([network(), sleeper('a')]);
  t.deepEqual(shrunk.deleted, ['docker:index/container:Container::b']);
  t.is(shrunk.removedContainers[0].exitCode, 0);
  t.is(realizer.containers()[0].id, kept);
  await realizer.destroy();
  t.is(await testObjects(), '');
});

test.serial('a local command runs in its dir with its environment, then the image builds from its context and build args', async (t) => {
  const realizer = newRealizer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-realizer-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(
    path.join(dir, 'Dockerfile'),
    'ARG BASE_IMAGE=missing\nFROM ${BASE_IMAGE}\nARG STAMP\nCOPY greeting.txt /greeting.txt\nRUN echo "$STAMP" > /stamp.txt\n',
  );
  const imageName = `${tag}:test`;
  const record: DeclaredResource[] = [
    {
      type: 'command:local:Command',
      name: 'write',
      inputs: { create: 'echo "$GREETING" > greeting.txt', dir, environment: { GREETING: `hello ${tag}` } },
      options: {},
    },
    {
      type: 'docker:index/image:Image',
      name: 'img',
      inputs: { imageName, skipPush: true, buildOnPreview: false, build: { context: dir, args: { BASE_IMAGE, STAMP: 'stamped' } } },
      options: { dependsOn: ['write'] },
    },
  ];
  await realizer.apply(record);
  const out = await docker([
    'run',
    '--rm',
    '--network',
    'none',
    '--label',
    `cnp.test=${tag}`,
    imageName,
    'cat',
    '/greeting.txt',
    '/stamp.txt',
  ]);
  t.is(out, `hello ${tag}\nstamped\n`);
  await realizer.destroy();
  // The docker provider's Delete of an Image is a no-op: destroy leaves it, and the test removes it.
  t.truthy(await inspect('image', imageName), 'destroy keeps the built image, as the provider does');
  await docker(['image', 'rm', imageName]);
  t.is(await inspect('image', imageName), undefined);
});

test.serial(
  'a container that does not become healthy stays, with an initialization error, and the next apply does not retry it',
  async (t) => {
    const realizer = newRealizer();
    const unhealthy = sleeper('sick', { healthcheck: { tests: ['CMD', 'false'], interval: '1s', retries: 1 }, wait: true, waitTimeout: 3 });
    await t.throwsAsync(realizer.apply([network(), unhealthy]), { message: /container sick-\w+ was created but did not come up/ });
    const [failed] = realizer.containers();
    t.truthy(failed?.initError, 'in the state with its initialization error');
    t.true((await inspect('container', failed.id))?.State?.Running, 'the provider leaves the container as it is');
    const again = await realizer.apply([network(), unhealthy]);
    t.deepEqual(again.updated, ['docker:index/container:Container::sick'], 'the engine sends an empty update');
    t.deepEqual(again.created, []);
    t.is(realizer.containers()[0].id, failed.id, 'not re-created');
    t.is(realizer.containers()[0].initError, undefined, 'and the error is gone from the state after it');
    await docker(['stop', '-t', '1', failed.id]);
    // With --refresh the provider's Read removes a stopped container, and the engine creates it again
    // (here it fails its wait again, as the first time).
    await t.throwsAsync(realizer.apply([network(), unhealthy], { refresh: true }), {
      message: /container sick-\w+ was created but did not come up/,
    });
    t.is(await inspect('container', failed.id), undefined, 'with --refresh the stopped container is removed');
    const [recreated] = realizer.containers();
    t.true((await inspect('container', recreated.id))?.State?.Running, 'and a new one runs in its place');
    await realizer.destroy();
    t.is(await testObjects(), '');
  },
);

test.serial('memory and restart change in place; a health check edit is saved but never reaches the container', async (t) => {
  const realizer = newRealizer();
  const limited = (memory: number, extra: Record<string, unknown> = {}) => sleeper('m', { memory, restart: 'no', ...extra });
  await realizer.apply([network(), limited(64)]);
  const id = realizer.containers()[0].id;
  // Docker 20.10 implied a swap limit of twice the memory at create; raising memory past it alone fails, as it does for the provider.
  await t.throwsAsync(realizer.apply([network(), limited(256)]), { message: /memory/i });
  const raised = await realizer.apply([network(), limited(256, { memorySwap: 256, restart: 'unless-stopped' })]);
  t.deepEqual(raised.updated, ['docker:index/container:Container::m']);
  const after = await inspect('container', id);
  t.is(after?.HostConfig?.Memory, 256 * 1024 * 1024, 'the same container now has the new limit');
  t.is(after?.HostConfig?.RestartPolicy?.Name, 'unless-stopped');
  const edited = await realizer.apply([
    network(),
    limited(256, { memorySwap: 256, restart: 'unless-stopped', healthcheck: { tests: ['CMD', 'true'] } }),
  ]);
  t.deepEqual(edited.unapplied, ['docker:index/container:Container::m: healthcheck']);
  t.is((await inspect('container', id))?.Config?.Healthcheck, undefined, 'the running container has no health check still');
  await realizer.destroy();
  t.is(await testObjects(), '');
});

test.serial("an object removed behind the realizer's back counts as removed at destroy", async (t) => {
  const realizer = newRealizer();
  await realizer.apply([network(), sleeper('a')]);
  await docker(['rm', '-f', realizer.containers()[0].name]);
  const summary = await realizer.destroy();
  t.is(summary.deleted.length, 2);
  t.is(await testObjects(), '');
});
