// The single-host layout: every container on one Docker engine (the local one, or dockerHost), on one
// stack network, with one Consul server.
import { singleEngineProvider, onEngine } from './docker-provider';
import { StackNetwork } from './network';
import { AppBundle } from './bundle';
import { collectorPublishAddress, LogCollector } from './collector';
import { Discovery } from './discovery';
import { ACTIVITY_REPLICAS, ServiceReplicas } from './replicas';
import { Broker, brokerRegistration } from './broker';
import { Balancer } from './balancer';
import { aclInit, roleTokenOf } from './consul-acl';
import { activityRole, balancerRole, brokerRole, replicaRole } from '../lib/consul-acl';
import { ACTIVITY_SERVICE_NAME } from '../lib/service-name';
import { httpUrl } from '../lib/endpoints';
import { probeAddress } from '../lib/listen-address';
import type { StackContext, StackOutputs } from './stack-outputs';

export function declareSingleHost({ config, naming, repoRoot, gossipKey, consulManagementToken }: StackContext): StackOutputs {
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
      publishAddress: collectorPublishAddress(config.bindAddress),
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
      repoRoot,
      bindAddress: config.bindAddress,
      consulUiPort: config.consulUiPort,
      gossipKey,
      managementToken: consulManagementToken,
    },
    onDocker,
  );

  // Puts the policies and role tokens into Consul once it is up, through its published port.
  const consulAcl = aclInit(
    'consul-acl-init',
    {
      repoRoot,
      consulHttpAddr: httpUrl(probeAddress(config.bindAddress), config.consulUiPort),
      managementToken: consulManagementToken,
      serviceName: config.serviceName,
      agentNodes: [discovery.nodeName],
      consulIdentity: [discovery.container.id, discovery.dataVolume.name],
    },
    { dependsOn: [discovery.container] },
  );

  const broker = new Broker(
    'broker',
    { naming, networkName: network.networkName, collector, repoRoot, natsImage: config.natsImage },
    onDocker,
  );

  // Registers the broker on the one agent, through Consul's published port like the ACL init step; the
  // agent's check reaches the broker by its container name on the stack network.
  const brokerRegistered = brokerRegistration(
    'broker-registration',
    {
      repoRoot,
      consulHttpAddr: httpUrl(probeAddress(config.bindAddress), config.consulUiPort),
      token: roleTokenOf(consulManagementToken, brokerRole()),
      brokerAddress: broker.address,
      agentIdentity: [discovery.container.id, discovery.dataVolume.name],
    },
    { dependsOn: [consulAcl] },
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
      consulToken: roleTokenOf(consulManagementToken, replicaRole(config.serviceName)),
    },
    { ...onDocker, dependsOn: [discovery.container, consulAcl] },
  );

  const activity = new ServiceReplicas(
    ACTIVITY_REPLICAS.group,
    {
      kind: ACTIVITY_REPLICAS,
      naming,
      networkName: network.networkName,
      collector,
      bundle: bundle.build,
      sourceHash: bundle.activitySourceHash,
      repoRoot,
      baseImage: config.baseImage,
      indices: Array.from({ length: config.activityReplicas }, (_, i) => i + 1),
      serviceName: ACTIVITY_SERVICE_NAME,
      consulHttpAddr: discovery.httpAddr,
      consulToken: roleTokenOf(consulManagementToken, activityRole()),
    },
    // It subscribes at start: the broker is up and registered first.
    { ...onDocker, dependsOn: [discovery.container, consulAcl, broker.container, brokerRegistered] },
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
      adminAddress: config.bindAddress,
      balancerAdminPort: config.balancerAdminPort,
      rateLimitPerClient: config.gatewayRateLimit,
      consulToken: roleTokenOf(consulManagementToken, balancerRole()),
    },
    { ...onDocker, dependsOn: [discovery.container, consulAcl] },
  );

  return {
    balancerUrl: balancer.url,
    balancerAdminUrl: balancer.adminUrl,
    consulUiUrl: discovery.uiUrl,
    replicaNames: replicas.names,
    activityReplicaNames: activity.names,
    logsCommand: collector.logsCommand,
  };
}
