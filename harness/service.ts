import http from 'node:http';
import path from 'node:path';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import { freshBundle } from './bundles';
import type { ConsulEndpoint } from './consul';
import { freePort } from './ports';
import { startProcess, type Managed } from './processes';

export const SERVICE_BUNDLE = path.resolve(__dirname, '../service/dist/main.js');

export interface Replica extends Managed {
  id: string;
  port: number;
  url: string;
}

/**
 * The environment of one replica on loopback (the bench launches it pinned to a CPU with the same);
 * its Consul token goes in as users give it, CONSUL_HTTP_TOKEN.
 */
export function replicaEnv(consulHttpAddr: string, name: string, id: string, port: number, token: string | undefined): NodeJS.ProcessEnv {
  return {
    ...(token !== undefined ? { [CONSUL_TOKEN_ENV]: token } : {}),
    PORT: String(port),
    HOST: '127.0.0.1',
    SERVICE_ADDRESS: '127.0.0.1',
    SERVICE_NAME: name,
    SERVICE_ID: id,
    CONSUL_HTTP_ADDR: consulHttpAddr,
  };
}

/**
 * Starts one service replica as a plain process on loopback, from the bundle `npm run build` makes
 * (the same file the image runs), registered under `SERVICE_NAME=name` with the given Consul and the
 * replica token for `name`.
 */
export async function startReplica(consul: ConsulEndpoint, name: string, id: string, env: NodeJS.ProcessEnv = {}): Promise<Replica> {
  const port = await freePort();
  const token = await consul.roleToken('replica', name);
  const proc = startProcess(process.execPath, [freshBundle('service')], { ...replicaEnv(consul.httpAddr, name, id, port, token), ...env });
  return Object.assign(proc, { id, port, url: `${env.TLS_CERT_FILE ? 'https' : 'http'}://127.0.0.1:${port}` });
}

/**
 * Starts a POST straight to a replica whose body is sent in two halves, so the request stays in flight
 * until `finish()`; `answer` is its status and Connection header, or the connection's error.
 */
export function slowPost(port: number) {
  const body = JSON.stringify({ name: 'Slow', email: 'slow@example.com' });
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/api/users',
    headers: { 'content-type': 'application/json' },
  });
  const answer = new Promise<{ status: number; connection?: string }>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('error', reject);
  });
  req.write(body.slice(0, 10));
  return { answer, finish: () => req.end(body.slice(10)) };
}
