// A hello or activity replica for one test of the events path: started on the test's Consul, stopped when the
// test ends, returned once it answers /health (an activity replica once it also consumes).
import type { ExecutionContext } from 'ava';
import { startActivity, waitForConsuming, type ActivityReplica } from '../../harness/activity';
import type { ConsulEndpoint } from '../../harness/consul';
import { waitFor } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';

async function answering<T extends Replica | ActivityReplica>(t: ExecutionContext, id: string, replica: T): Promise<T> {
  t.teardown(() => replica.stop().then(() => undefined));
  await waitFor(`${id} to answer /health`, async () => (await fetch(`${replica.url}/health`)).ok, 15_000, 50);
  return replica;
}

export function helloFor(
  t: ExecutionContext,
  consul: ConsulEndpoint,
  name: string,
  id: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Replica> {
  return startReplica(consul, name, id, env).then((replica) => answering(t, id, replica));
}

export async function activityFor(
  t: ExecutionContext,
  consul: ConsulEndpoint,
  id: string,
  env: NodeJS.ProcessEnv = {},
): Promise<ActivityReplica> {
  const replica = await answering(t, id, await startActivity(consul, id, env));
  await waitForConsuming(replica);
  return replica;
}
