import { freshBundle } from './bundles';
import type { ConsulEndpoint } from './consul';
import { freePort } from './ports';
import { startProcess, waitFor, type Managed } from './processes';
import { replicaEnv } from './service';

export interface ActivityReplica extends Managed {
  id: string;
  port: number;
  url: string;
}

/**
 * Starts one activity service replica as a plain process on loopback, from the bundle `npm run build`
 * makes (the file its image runs), with the activity role's token; it finds the broker through Consul.
 * `port` reuses a port (a restarted replica), else a free one is picked.
 */
export async function startActivity(
  consul: ConsulEndpoint,
  id: string,
  env: NodeJS.ProcessEnv = {},
  port?: number,
): Promise<ActivityReplica> {
  const listenPort = port ?? (await freePort());
  const name = env.SERVICE_NAME ?? 'activity';
  const token = await consul.roleToken('activity', name);
  const proc = startProcess(process.execPath, [freshBundle('activity')], {
    ...replicaEnv(consul.httpAddr, name, id, listenPort, token),
    ...env,
  });
  return Object.assign(proc, { id, port: listenPort, url: `http://127.0.0.1:${listenPort}` });
}

/** Waits until the replica's log says it consumes the user events (connected, stream and durable ready). */
export async function waitForConsuming(replica: ActivityReplica, timeoutMs = 15_000): Promise<void> {
  await waitFor(`${replica.id} to consume user events`, () => replica.output().includes('"msg":"consuming user events"'), timeoutMs, 50);
}
