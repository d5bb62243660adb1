import { upstreamsOf } from '../../harness/balancer';
import { SERVICE_NAME, upstreamOf, type SystemUnderTest } from '../system-under-test';
import { cpuOf, type Peer } from './peer';

/** Our balancer (watcher + nginx), already started by startSystemUnderTest; stopping it is the SUT's job. */
export function oursPeer(sut: SystemUnderTest): Peer {
  const pids = () => {
    const { master, workers } = sut.nginx();
    return [sut.balancer.child.pid!, ...(master ? [master, ...workers] : [])];
  };
  return {
    name: 'ours',
    description: 'watcher (Consul blocking queries) renders nginx upstreams and reloads nginx; JSON access log',
    url: sut.balancerUrl,
    namingUrl: sut.balancerAdminUrl,
    discovers: true,
    inRotation: async (replica) => upstreamsOf(await sut.status(), SERVICE_NAME).includes(upstreamOf(replica)),
    pids,
    cpuUs: () => cpuOf(pids()),
    stop: () => Promise.resolve(),
  };
}
