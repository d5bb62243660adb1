import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { AutocannonJob, AutocannonReport, LoadJob, LoadReport, SingleRequestsReport, WorkerReply } from './load-protocol';
import { pinnedCommand } from './pinning';

export interface LoadGenerator {
  pid: number;
  autocannon(job: Omit<AutocannonJob, 'kind'>): Promise<AutocannonReport>;
  singleRequests(url: string, count: number): Promise<SingleRequestsReport>;
  stop(): Promise<void>;
}

const WORKER = path.join(__dirname, 'load-generator-worker.ts');

/** Starts the load-generator process on `cpu` (through taskset), talking to it over an IPC channel. */
export async function startLoadGenerator(cpu: number | undefined): Promise<LoadGenerator> {
  const [command, args] = pinnedCommand(cpu, process.execPath, ['--import', 'tsx', WORKER]);
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });

  // One job at a time: the worker answers in order.
  let queue: Promise<unknown> = Promise.resolve();
  const send = <R extends LoadReport>(job: LoadJob): Promise<R> => {
    const result = queue.then(
      () =>
        new Promise<R>((resolve, reject) => {
          const onExit = () => reject(new Error(`load generator exited during a ${job.kind} job`));
          child.once('exit', onExit);
          child.once('message', (reply: WorkerReply) => {
            child.off('exit', onExit);
            if (reply.ok) resolve(reply.report as R);
            else reject(new Error(`load generator: ${reply.error}`));
          });
          child.send(job);
        }),
    );
    queue = result.catch(() => undefined);
    return result;
  };

  return {
    pid: child.pid!,
    autocannon: (job) => send<AutocannonReport>({ kind: 'autocannon', ...job }),
    singleRequests: (url, count) => send<SingleRequestsReport>({ kind: 'single', url, count }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
