// The docker CLI, against the local engine or a remote one (`-H` plus an ssh wrapper: see engines.ts).
import { execFile } from 'node:child_process';

export interface RunOptions {
  /** The engine a docker call goes to; the local one when absent. */
  engine?: Engine;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Text or bytes written to the command's stdin. */
  input?: string | Buffer;
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

/** Bounds concurrent work (ssh sessions against one sshd: its MaxStartups, and two cores). */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async use<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await work();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

/** A Docker engine as a docker provider reaches it (see engines.ts); no host = the local one. */
export interface Engine {
  /** What a message names it by: the provider's name, or "local". */
  label: string;
  /** `-H` for the CLI: `ssh://user@host:port` or `unix://...`. */
  host?: string;
  /** Extra environment of the CLI (an ssh wrapper first on PATH). */
  env?: NodeJS.ProcessEnv;
  /** Bounds the CLI calls in flight to this engine (each is one ssh session). */
  sessions?: Semaphore;
}

/** The docker CLI against the local engine, or the engine `options.engine` names. */
export function docker(args: string[], options: RunOptions = {}): Promise<string> {
  const { engine, ...rest } = options;
  if (!engine?.host) return run('docker', args, rest);
  const call = () => run('docker', ['-H', engine.host!, ...args], { ...rest, env: { ...(rest.env ?? process.env), ...engine.env } });
  return engine.sessions ? engine.sessions.use(call) : call();
}

/** The fields of `docker container inspect` the tests read. */
export interface ContainerInspect {
  Id: string;
  /** When it was created (RFC 3339). */
  Created: string;
  /** The image id it runs. */
  Image: string;
  RestartCount: number;
  State: {
    Running: boolean;
    /** created, running, exited, ... */
    Status: string;
    Pid: number;
    ExitCode: number;
    Health?: { Status: string };
  };
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
export async function inspect(kind: 'container', ref: string, engine?: Engine): Promise<ContainerInspect | undefined>;
export async function inspect(kind: 'network' | 'volume' | 'image', ref: string, engine?: Engine): Promise<ObjectInspect | undefined>;
export async function inspect(
  kind: 'container' | 'network' | 'volume' | 'image',
  ref: string,
  engine?: Engine,
): Promise<ContainerInspect | ObjectInspect | undefined> {
  try {
    const [object] = JSON.parse(await docker([kind, 'inspect', ref], { engine })) as (ContainerInspect | ObjectInspect)[];
    return object;
  } catch (error) {
    if (/no such|not found/i.test(String(error))) return undefined;
    throw error;
  }
}
