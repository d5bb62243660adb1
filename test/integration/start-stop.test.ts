// Stopping the parts the service and balancer READMEs start by hand. Signalling the PID a shell shows for `npm run
// start:balancer`, `npm run start:service` or `npm run start:activity` (npm's own) must stop the process behind it, nginx
// included, and free its port; and a watcher killed outright must not leave an nginx that keeps the
// next start in the same WORK_DIR from binding. Real Consul, real nginx, real npm.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { childPids } from '../../balancer/listeners';
import { freshBundle } from '../../harness/bundles';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { freePort, freePorts } from '../../harness/ports';
import { startProcess, stopAll, waitFor, type Managed } from '../../harness/processes';
import { REPO_ROOT } from '../helpers/record-stack';
import { replicaEnv } from '../../harness/service';
import { openEventStream } from '../../harness/sse';

let consul: ConsulAgent;

test.before(async () => {
  consul = await startConsul();
});

test.after.always(async () => {
  await stopAll();
  await consul?.stop();
});

/** Alive and not a zombie (an orphan's parent here may be slow to reap it; a zombie holds no port). */
async function isRunning(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

async function cmdline(pid: number): Promise<string> {
  return (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
}

/** Whether something can listen on 127.0.0.1:port right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** SIGKILLs, at the end of the test, whichever of these processes still runs (only if the test failed to stop them). */
function killAtTeardown(t: ExecutionContext, pids: () => number[]): void {
  t.teardown(async () => {
    for (const pid of pids()) if (await isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
}

async function tempDir(t: ExecutionContext, prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `npm run <script>` in the project, as a user types it; the PID we signal is npm's. */
function npmRun(script: string, env: NodeJS.ProcessEnv, { detached = false } = {}): Managed {
  if (process.cwd() !== REPO_ROOT) throw new Error(`tests run from the project root, not ${process.cwd()}`);
  return startProcess('npm', ['run', script], env, { detached });
}

/** The process npm runs the script's `node <bundle>` in (its child, or a shell's child). */
async function scriptProcess(npm: Managed, bundle: string): Promise<number> {
  const pid = await waitFor(
    `npm's descendant running ${bundle}`,
    async () => {
      const children = await childPids(npm.child.pid!);
      const grandchildren = (await Promise.all(children.map((child) => childPids(child)))).flat();
      for (const candidate of [...children, ...grandchildren]) {
        if ((await cmdline(candidate)) === `node ${bundle}`) return candidate;
      }
      return undefined;
    },
    15_000,
  );
  return pid;
}

// How a user stops what `npm run` started: `kill` of the PID the shell shows (npm's), or a terminal's
// Ctrl-C, which signals the whole foreground process group: npm, which passes SIGINT on, and the process
// itself, which so gets it twice and must still stop once, gracefully.
const stops = [
  { how: 'SIGTERM to the PID of', signal: 'SIGTERM', group: false },
  { how: 'SIGINT to the PID of', signal: 'SIGINT', group: false },
  { how: 'Ctrl-C (SIGINT to the process group) of', signal: 'SIGINT', group: true },
] as const;

function stop(npm: Managed, { signal, group }: (typeof stops)[number]): void {
  // Detached, npm leads a process group of its own, as a terminal's foreground job does.
  process.kill(group ? -npm.child.pid! : npm.child.pid!, signal);
}

for (const way of stops)
  test(`${way.how} \`npm run start:balancer\` stops the watcher and nginx and frees the port`, async (t) => {
    const { signal } = way;
    const [port, adminPort] = await freePorts(2);
    const workDir = await tempDir(t, 'start-balancer-');
    const npm = npmRun(
      'start:balancer',
      {
        CONSUL_HTTP_ADDR: consul.httpAddr,
        CONSUL_HTTP_TOKEN: await consul.roleToken('balancer'),
        LISTEN_ADDRESS: '127.0.0.1',
        LISTEN_PORT: String(port),
        ADMIN_PORT: String(adminPort),
        WORK_DIR: workDir,
      },
      { detached: true },
    );
    let pids: number[] = [];
    killAtTeardown(t, () => pids);
    const watcher = await scriptProcess(npm, 'balancer/dist/main.js');
    pids = [watcher];
    await waitFor('the balancer to start', () => npm.output().includes('"msg":"balancer started"'), 30_000);
    const master = Number((await fs.readFile(path.join(workDir, 'nginx.pid'), 'utf8')).trim());
    const workers = await childPids(master);
    pids = [watcher, master, ...workers];
    t.true(workers.length > 0);
    t.regex(await cmdline(master), /^nginx: master process /);
    const res = await fetch(`http://127.0.0.1:${adminPort}/_balancer/status`);
    t.is(res.status, 200);
    t.false(await canBind(port));
    t.false(await canBind(adminPort));

    stop(npm, way);
    const npmExit = await npm.exited;
    await waitFor(
      'the watcher and nginx to exit',
      async () => {
        const running = [];
        for (const pid of pids) if (await isRunning(pid)) running.push(pid);
        if (running.length > 0) throw new Error(`still running: ${running.join(', ')} (watcher ${watcher}, nginx master ${master})`);
        return true;
      },
      15_000,
    );
    t.true(await canBind(port), `port ${port} is still held`);
    t.is(npmExit, 0, npm.output());
    t.regex(npm.output(), new RegExp(`"msg":"stopping","signal":"${signal}"`));
    t.regex(npm.output(), /"msg":"stopped","nginxExit":\{"code":0/);
  });

for (const way of stops) {
  test(`${way.how} \`npm run start:service\` drains, deregisters and stops the replica`, async (t) => {
    const port = await freePort();
    const id = `start-stop-replica-${port}`;
    const name = `start-stop-service-${port}`;
    const npm = npmRun('start:service', replicaEnv(consul.httpAddr, name, id, port, await consul.roleToken('replica', name)), {
      detached: true,
    });
    let pids: number[] = [];
    killAtTeardown(t, () => pids);
    pids = [await scriptProcess(npm, 'service/dist/main.js')];
    await waitFor(`${id} passing in Consul`, async () => (await consul.passing(name)).includes(id), 30_000);
    t.false(await canBind(port));

    stop(npm, way);
    const npmExit = await npm.exited;
    // npm waits for its child: once npm is gone, so must the replica be.
    t.false(await isRunning(pids[0]), `the replica (pid ${pids[0]}) still runs after npm exited`);
    t.true(await canBind(port), `port ${port} is still held`);
    t.deepEqual(await consul.passing(name), []);
    t.is(npm.output().match(/"msg":"draining"/g)?.length, 1, npm.output());
    t.regex(npm.output(), /"msg":"deregistered"/);
    t.regex(npm.output(), /"msg":"stopped"/);
    t.notRegex(npm.output(), /second signal/);
    t.is(npmExit, 0, npm.output());
  });
}

for (const way of stops.filter((w) => w.group)) {
  test(`${way.how} \`npm run start:activity\` ends its event streams, deregisters and stops the activity replica`, async (t) => {
    const port = await freePort();
    const id = `start-stop-activity-${port}`;
    const name = `start-stop-activity-${port}`;
    const token = await consul.roleToken('activity', name);
    const npm = npmRun(
      'start:activity',
      {
        CONSUL_HTTP_ADDR: consul.httpAddr,
        CONSUL_HTTP_TOKEN: token,
        HOST: '127.0.0.1',
        PORT: String(port),
        SERVICE_ID: id,
        SERVICE_NAME: name,
      },
      { detached: true },
    );
    let pids: number[] = [];
    killAtTeardown(t, () => pids);
    pids = [await scriptProcess(npm, 'activity/dist/main.js')];
    await waitFor(`${id} passing in Consul`, async () => (await consul.passing(name)).includes(id), 30_000);
    // An open stream must not hold the exit: the replica ends it as it drains.
    const stream = await openEventStream(`http://127.0.0.1:${port}`);
    t.teardown(() => stream.close());

    stop(npm, way);
    const npmExit = await npm.exited;
    t.false(await isRunning(pids[0]), `the activity replica (pid ${pids[0]}) still runs after npm exited`);
    await waitFor('the event stream to have ended', () => stream.ended(), 2000);
    t.true(await canBind(port), `port ${port} is still held`);
    t.deepEqual(await consul.passing(name), []);
    t.regex(npm.output(), /"msg":"event stream ended","reason":"stopping"/);
    t.regex(npm.output(), /"msg":"deregistered"/);
    t.regex(npm.output(), /"msg":"stopped"/);
    t.notRegex(npm.output(), /second signal/);
    t.is(npmExit, 0, npm.output());
  });
}

/** The watcher run directly from its bundle, with a WORK_DIR and port of the test's choosing. */
function startWatcher(port: number, adminPort: number, workDir: string): Managed {
  return startProcess(process.execPath, [freshBundle('balancer')], {
    CONSUL_HTTP_ADDR: consul.httpAddr,
    LISTEN_ADDRESS: '127.0.0.1',
    LISTEN_PORT: String(port),
    ADMIN_PORT: String(adminPort),
    WORK_DIR: workDir,
  });
}

async function started(watcher: Managed): Promise<void> {
  await waitFor(
    'the balancer to start',
    () => {
      if (watcher.child.exitCode !== null) throw new Error(`balancer exited: ${watcher.output()}`);
      return watcher.output().includes('"msg":"balancer started"');
    },
    15_000,
  );
}

test('a watcher killed outright leaves nginx behind; the next start in that WORK_DIR stops it and binds', async (t) => {
  const [port, adminPort] = await freePorts(2);
  const workDir = await tempDir(t, 'stale-balancer-');
  let pids: number[] = [];
  killAtTeardown(t, () => pids);
  const first = startWatcher(port, adminPort, workDir);
  await started(first);
  const master = Number((await fs.readFile(path.join(workDir, 'nginx.pid'), 'utf8')).trim());
  const workers = await childPids(master);
  pids = [master, ...workers];

  first.child.kill('SIGKILL');
  await first.exited;
  // What the next start meets: the old nginx still runs and holds the port.
  t.true(await isRunning(master));
  t.false(await canBind(port));

  const second = startWatcher(port, adminPort, workDir);
  await started(second);
  t.regex(second.output(), new RegExp(`"msg":"stopping the nginx an earlier balancer left running in WORK_DIR","pid":${master}`));
  for (const pid of [master, ...workers]) t.false(await isRunning(pid), `old nginx process ${pid} still runs`);
  const res = await fetch(`http://127.0.0.1:${adminPort}/_balancer/status`);
  t.is(res.status, 200);
  t.is(await second.stop(5000), 0);
});

test('a second balancer in the WORK_DIR of one that runs refuses to start and leaves it serving', async (t) => {
  const [port, adminPort] = await freePorts(2);
  const workDir = await tempDir(t, 'busy-balancer-');
  const first = startWatcher(port, adminPort, workDir);
  await started(first);
  const master = Number((await fs.readFile(path.join(workDir, 'nginx.pid'), 'utf8')).trim());

  const [otherPort, otherAdminPort] = await freePorts(2);
  const second = startWatcher(otherPort, otherAdminPort, workDir);
  t.teardown(() => second.stop(5000));
  await waitFor('the second balancer to exit', () => second.child.exitCode !== null, 15_000);
  t.is(second.child.exitCode, 1);
  t.regex(
    second.output(),
    new RegExp(`WORK_DIR=${workDir} is in use by the running balancer with pid ${first.child.pid} \\(its nginx is pid ${master}\\)`),
  );
  t.true(await isRunning(master));
  const res = await fetch(`http://127.0.0.1:${adminPort}/_balancer/status`);
  t.is(res.status, 200);
  t.is(await first.stop(5000), 0);
});
