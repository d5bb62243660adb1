import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Versions {
  node: string;
  nginx: string;
  haproxy: string;
  consul: string;
  autocannon: string;
  hono: string;
  honoNodeServer: string;
  kernel: string;
  cpu: string;
  /** The machine's memory, e.g. "7.8 GiB". */
  memory: string;
}

/** Version printed by a command; nginx prints on stderr and consul on stdout, so both are read. */
function commandVersion(command: string, args: string[], pattern: RegExp): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return pattern.exec(`${result.stdout ?? ''}${result.stderr ?? ''}`)?.[1] ?? 'unknown';
}

function packageVersion(name: string): string {
  try {
    const file = path.resolve(__dirname, '../node_modules', name, 'package.json');
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function collectVersions(): Versions {
  return {
    node: process.version,
    nginx: commandVersion('nginx', ['-v'], /nginx\/(\S+)/),
    haproxy: commandVersion('haproxy', ['-v'], /HAProxy version (\S+)/),
    consul: commandVersion('consul', ['version'], /Consul v(\S+)/),
    autocannon: packageVersion('autocannon'),
    hono: packageVersion('hono'),
    honoNodeServer: packageVersion('@hono/node-server'),
    kernel: os.release(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  };
}
