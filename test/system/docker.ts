import { execFile } from 'node:child_process';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Text written to the command's stdin. */
  input?: string;
}

/** Runs a command to completion; rejects with its stderr (and stdout) when it exits non-zero. */
export function run(command: string, args: string[], { cwd, env, timeoutMs = 120_000, input }: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { cwd, env: env ?? process.env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const output = `${stderr}${stdout ? `\n${stdout}` : ''}`.trim().split('\n').slice(-25).join('\n');
          reject(new Error(`${command} ${args.join(' ').slice(0, 300)} failed (${error.code ?? error.signal}): ${output}`));
        } else {
          resolve(stdout);
        }
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** The docker CLI against the local engine. */
export function docker(args: string[], options: RunOptions = {}): Promise<string> {
  return run('docker', args, options);
}

/** The fields of `docker container inspect` the tests read. */
export interface ContainerInspect {
  Id: string;
  RestartCount: number;
  State: { Running: boolean; Pid: number; ExitCode: number; Health?: { Status: string } };
  HostConfig: {
    Memory: number;
    MemorySwap: number;
    RestartPolicy: { Name: string };
    ReadonlyRootfs: boolean;
    CapDrop: string[] | null;
    CapAdd: string[] | null;
    SecurityOpt: string[] | null;
    NanoCpus: number;
    Ulimits: { Name: string; Soft: number; Hard: number }[] | null;
    Tmpfs: Record<string, string> | null;
  };
  Config: { Env?: string[]; Healthcheck?: { Test?: string[] }; User: string };
  Mounts: { Type: string; Name: string }[];
  NetworkSettings: { Networks?: Record<string, { IPAddress: string }> };
}

/** The fields of `docker image/network/volume inspect` the tests read. */
export interface ObjectInspect {
  Id?: string;
  Name?: string;
}

/** `docker inspect` of one object, parsed; undefined when it does not exist. */
export async function inspect(kind: 'container', ref: string): Promise<ContainerInspect | undefined>;
export async function inspect(kind: 'network' | 'volume' | 'image', ref: string): Promise<ObjectInspect | undefined>;
export async function inspect(
  kind: 'container' | 'network' | 'volume' | 'image',
  ref: string,
): Promise<ContainerInspect | ObjectInspect | undefined> {
  try {
    const [object] = JSON.parse(await docker([kind, 'inspect', ref])) as (ContainerInspect | ObjectInspect)[];
    return object;
  } catch (error) {
    if (/no such|not found/i.test(String(error))) return undefined;
    throw error;
  }
}
