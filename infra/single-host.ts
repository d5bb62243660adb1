// The single-host layout: every container on one Docker engine (the local one, or dockerHost), on one
// stack network, with one Consul server.
import { singleEngineProvider, onEngine } from './docker-provider';
import { StackNetwork } from './network';
import { AppBundle } from './bundle';
import { LogCollector } from './collector';
import { Discovery } from './discovery';
import { ServiceReplicas } from './replicas';
import { Balancer } from './balancer';
import type { StackContext, StackOutputs } from './stack-outputs';

export function declareSingleHost({ config, naming, repoRoot, gossipKey }: StackContext): StackOutputs {
  const onDocker = onEngine(singleEngineProvider(config.dockerHost));

  const network = new StackNetwork('network', { naming }, onDocker);

  const bundle = new AppBundle('bundle', { repoRoot });

  const collector = new LogCollector(
    'collector',
    {
      naming,
      networkName: network.networkName,
      repoRoot,
      baseImage: config.baseImage,
      bindAddress: config.bindAddress,
      collectorPort: config.collectorPort,
      dockerHost: config.dockerHost,
    },
    onDocker,
  );

  const discovery = new Discovery(
    'discovery',
    {
      naming,
      networkName: network.networkName,
      collector,
      consulImage: config.consulImage,
      bindAddress: config.bindAddress,
      consulUiPort: config.consulUiPort,
      gossipKey,
    },
    onDocker,
  );

  const replicas = new ServiceReplicas(
    'replicas',
    {
      naming,
      networkName: network.networkName,
      collector,
      bundle: bundle.build,
      sourceHash: bundle.serviceSourceHash,
      repoRoot,
      baseImage: config.baseImage,
      indices: Array.from({ length: config.replicas }, (_, i) => i + 1),
      serviceName: config.serviceName,
      consulHttpAddr: discovery.httpAddr,
    },
    { ...onDocker, dependsOn: [discovery.container] },
  );

  const balancer = new Balancer(
    'balancer',
    {
      naming,
      networkName: network.networkName,
      collector,
      bundle: bundle.build,
      sourceHash: bundle.balancerSourceHash,
      repoRoot,
      baseImage: config.baseImage,
      serviceName: config.serviceName,
      consulHttpAddr: discovery.httpAddr,
      bindAddress: config.bindAddress,
      balancerPort: config.balancerPort,
    },
    { ...onDocker, dependsOn: [discovery.container] },
  );

  return { balancerUrl: balancer.url, consulUiUrl: discovery.uiUrl, replicaNames: replicas.names, logsCommand: collector.logsCommand };
}
