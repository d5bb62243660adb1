import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childPids, listenerInodes, workersStillListening } from '../../balancer/listeners';
import { freePort } from '../../harness/ports';
import { startProcess, stopAll, waitFor } from '../../harness/processes';

test.after.always(stopAll);

// A real nginx: after a graceful reload its old workers keep accepting for a moment, which is what
// the balancer waits out before it reports a new upstream set as served.
test('old nginx workers are seen listening until they handle the reload, the new ones after', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-listeners-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${dir}/${k};`).join(' ');
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off; worker_processes 2; pid ${dir}/nginx.pid; error_log stderr warn; events { worker_connections 64; }
     http { ${temp} access_log off; server { listen 127.0.0.1:${port}; location / { return 200 "ok"; } } }`,
  );
  const nginx = startProcess('nginx', ['-e', 'stderr', '-p', `${dir}/`, '-c', `${dir}/nginx.conf`]);
  const master = nginx.child.pid!;
  const twoWorkers = async (exclude: number[]) => {
    const pids = (await childPids(master)).filter((pid) => !exclude.includes(pid));
    return pids.length === 2 ? pids : undefined;
  };
  const oldWorkers = await waitFor('two workers', () => twoWorkers([]), 5000);
  const listeners = await listenerInodes(master);
  t.is(listeners.size, 1, 'the one listen socket');
  t.deepEqual((await workersStillListening(listeners, oldWorkers)).sort(), [...oldWorkers].sort());

  nginx.child.kill('SIGHUP');
  await waitFor('old workers to stop accepting', async () => (await workersStillListening(listeners, oldWorkers)).length === 0, 5000, 5);
  const newWorkers = await waitFor('two new workers', () => twoWorkers(oldWorkers), 5000);
  t.is((await workersStillListening(listeners, newWorkers)).length, 2, nginx.output());
});
