// The VM layout: the stack spread over the `vms` list, each VM reached over SSH through its own docker
// provider. Per VM: a bootstrap and a provider (VmHost), the stack network with an explicit subnet, and a
// Consul agent; then, by role, the collector, the broker, the hello and activity replicas placed on it
// (infra/placement.ts) and the balancer.
// Images are built on the VM that runs them (the build context goes over SSH to that engine), each for that
// VM's CPU as its bootstrap reports it (VmHost.platform), never for the machine running pulumi.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { subnetGateway, type VmConfig, type VmRole } from './config';
import { onEngine } from './docker-provider';
import { SshAccess, VmHost } from './vm-host';
import { StackNetwork } from './network';
import { AppBundle } from './bundle';
import { LogCollector } from './collector';
import { ConsulAgent } from './consul-agent';
import { ACTIVITY_REPLICAS, HELLO_REPLICAS, ServiceReplicas, type ReplicaKind } from './replicas';
import { Broker, brokerRegistration } from './broker';
import { Balancer } from './balancer';
import { placeReplicas, type ReplicaRole } from './placement';
import type { LogDestination } from './container-settings';
import { aclInit, roleTokenOf } from './consul-acl';
import { activityRole, balancerRole, brokerRole, replicaRole, type AclRole } from '../lib/consul-acl';
import { ACTIVITY_SERVICE_NAME } from '../lib/service-name';
import { httpUrl } from '../lib/endpoints';
import type { StackContext, StackOutputs } from './stack-outputs';

export function declareOnVms({ config, naming, repoRoot, gossipKey, consulManagementToken }: StackContext): StackOutputs {
  const only = (role: VmRole): VmConfig => config.vms.find((vm) => vm.roles.includes(role))!;
  const gatewayAddress = subnetGateway(config.vmNetworkSubnet);
  const discoveryVms = config.vms.filter((vm) => vm.roles.includes('discovery'));
  const servers = discoveryVms.map((vm) => vm.privateAddress);

  const ssh = new SshAccess('ssh', {
    dir: path.join(repoRoot, '.pulumi', 'ssh', naming.stack),
    privateKey: config.sshPrivateKey,
  });
  const hosts = new Map(config.vms.map((vm) => [vm.name, new VmHost(vm.name, { vm, ssh })]));
  const onVm = (vm: VmConfig) => onEngine(hosts.get(vm.name)!.provider);
  const platformOf = (vm: VmConfig) => hosts.get(vm.name)!.platform;
  const networks = new Map(
    config.vms.map((vm) => [
      vm.name,
      new StackNetwork(`${vm.name}-network`, { naming, ipam: { subnet: config.vmNetworkSubnet, gateway: gatewayAddress } }, onVm(vm)),
    ]),
  );

  const bundle = new AppBundle('bundle', { repoRoot });

  // Every container on every VM logs to it over TCP, and is created after it (stackContainer's dependsOn).
  const collectorVm = only('collector');
  const collector = new LogCollector(
    `${collectorVm.name}-collector`,
    {
      naming,
      networkName: networks.get(collectorVm.name)!.networkName,
      repoRoot,
      baseImage: config.baseImage,
      publishAddress: collectorVm.privateAddress,
      collectorPort: config.collectorPort,
      dockerHost: hosts.get(collectorVm.name)!.dockerHost,
      platform: platformOf(collectorVm),
    },
    onVm(collectorVm),
  );

  // Containers of one name run on several VMs (every VM's Consul agent): their logs carry the VM's name too,
  // so the collector files them apart (`<vm>.<container>.log`).
  const logsFrom = (vm: VmConfig): LogDestination => ({
    container: collector.container,
    logSettingsFor: (tag) => collector.logSettingsFor(pulumi.interpolate`${vm.name}.${tag}`),
  });

  const agents = new Map<string, ConsulAgent>();
  const declareAgent = (vm: VmConfig, after: pulumi.Resource[]) =>
    agents.set(
      vm.name,
      new ConsulAgent(
        `${vm.name}-consul`,
        {
          naming,
          vm,
          collector: logsFrom(vm),
          consulImage: config.consulImage,
          platform: platformOf(vm),
          repoRoot,
          httpPort: config.consulUiPort,
          gatewayAddress,
          servers,
          gossipKey,
          managementToken: consulManagementToken,
        },
        // The agent binds the network's gateway address: the network comes first.
        { ...onVm(vm), dependsOn: [networks.get(vm.name)!.network, ...after] },
      ),
    );
  discoveryVms.forEach((vm) => declareAgent(vm, []));

  // Puts the policies and role tokens into Consul once the servers are up. The API listens on the VMs'
  // loopback only, so the step (on the machine running `pulumi up`) reaches the first server's through an
  // SSH local forward, with the ssh settings the docker providers use.
  const aclVm = discoveryVms[0];
  const consulAcl = aclInit(
    'consul-acl-init',
    {
      repoRoot,
      consulHttpAddr: httpUrl('127.0.0.1', config.consulUiPort),
      managementToken: consulManagementToken,
      serviceName: config.serviceName,
      agentNodes: config.vms.map((vm) => vm.name),
      consulIdentity: discoveryVms.flatMap((vm) => [agents.get(vm.name)!.container.id, agents.get(vm.name)!.dataVolume.name]),
      ssh: { ...aclVm.ssh, opts: ssh.sshOpts },
    },
    { dependsOn: [ssh.files, ...discoveryVms.map((vm) => agents.get(vm.name)!.container)] },
  );
  // The other agents start once their token exists: an agent whose token Consul does not know yet has its node
  // and its services' sync blocked until its next full anti-entropy run, about a minute later. And nothing
  // outside a replicas or activity VM depends on that VM, so a dead one can leave the state alone
  // (scripts/vm-forget.ts).
  config.vms.filter((vm) => !discoveryVms.includes(vm)).forEach((vm) => declareAgent(vm, [consulAcl]));

  // Each role's containers talk to their own VM's agent, through the network's gateway: an address of the VM
  // itself, so the replicas, in the VM's own network, reach it there too.
  const roleArgs = (vm: VmConfig) => ({
    naming,
    networkName: networks.get(vm.name)!.networkName,
    collector: logsFrom(vm),
    bundle: bundle.build,
    repoRoot,
    baseImage: config.baseImage,
    serviceName: config.serviceName,
    consulHttpAddr: agents.get(vm.name)!.httpAddr,
    platform: platformOf(vm),
  });

  // The broker on its VM, its ports on the private address; registered on that VM's agent, through an SSH
  // local forward to that VM (its API listens on the VM's loopback), whose check reaches it on the private address.
  const brokerVm = only('broker');
  const broker = new Broker(
    `${brokerVm.name}-broker`,
    {
      naming,
      networkName: networks.get(brokerVm.name)!.networkName,
      collector: logsFrom(brokerVm),
      repoRoot,
      natsImage: config.natsImage,
      publishOn: brokerVm.privateAddress,
      platform: platformOf(brokerVm),
    },
    onVm(brokerVm),
  );
  const brokerAgent = agents.get(brokerVm.name)!;
  const brokerRegistered = brokerRegistration(
    'broker-registration',
    {
      repoRoot,
      consulHttpAddr: httpUrl('127.0.0.1', config.consulUiPort),
      token: roleTokenOf(consulManagementToken, brokerRole()),
      brokerAddress: broker.address,
      agentIdentity: [brokerAgent.container.id, brokerAgent.dataVolume.name],
      ssh: { ...brokerVm.ssh, opts: ssh.sshOpts },
    },
    { dependsOn: [ssh.files, brokerAgent.container, consulAcl] },
  );

  // Each service's replicas over the VMs of its role, in each VM's network on the first free port of the service's range.
  const declareReplicas = (
    kind: ReplicaKind,
    vmRole: ReplicaRole,
    count: number,
    service: { name: string; sourceHash: string; acl: AclRole },
    after: pulumi.Resource[],
  ): pulumi.Output<string[]> => {
    const names = new Map<number, pulumi.Output<string>>();
    for (const [vmName, indices] of placeReplicas(count, config.vms, vmRole)) {
      const vm = config.vms.find((v) => v.name === vmName)!;
      const replicas = new ServiceReplicas(
        `${vm.name}-${kind.group}`,
        {
          ...roleArgs(vm),
          kind,
          serviceName: service.name,
          sourceHash: service.sourceHash,
          indices,
          vmAddress: vm.privateAddress,
          consulToken: roleTokenOf(consulManagementToken, service.acl),
        },
        { ...onVm(vm), dependsOn: [agents.get(vm.name)!.container, consulAcl, ...after] },
      );
      indices.forEach((index, i) =>
        names.set(
          index,
          replicas.names.apply((all) => all[i]),
        ),
      );
    }
    return pulumi.all([...names.entries()].sort(([a], [b]) => a - b).map(([, name]) => name));
  };
  const replicaNames = declareReplicas(
    HELLO_REPLICAS,
    'replicas',
    config.replicas,
    { name: config.serviceName, sourceHash: bundle.serviceSourceHash, acl: replicaRole(config.serviceName) },
    [],
  );
  // The activity replicas subscribe at start: the broker is up and registered first.
  const activityReplicaNames = declareReplicas(
    ACTIVITY_REPLICAS,
    'activity',
    config.activityReplicas,
    { name: ACTIVITY_SERVICE_NAME, sourceHash: bundle.activitySourceHash, acl: activityRole() },
    [broker.container, brokerRegistered],
  );

  const balancerVm = only('balancer');
  const balancer = new Balancer(
    `${balancerVm.name}-balancer`,
    {
      ...roleArgs(balancerVm),
      sourceHash: bundle.balancerSourceHash,
      bindAddress: balancerVm.publicAddress,
      balancerPort: config.balancerPort,
      // The admin listener shows instance addresses: the private network only.
      adminAddress: balancerVm.privateAddress,
      balancerAdminPort: config.balancerAdminPort,
      rateLimitPerClient: config.gatewayRateLimit,
      consulToken: roleTokenOf(consulManagementToken, balancerRole()),
    },
    { ...onVm(balancerVm), dependsOn: [agents.get(balancerVm.name)!.container, consulAcl] },
  );

  return {
    balancerUrl: balancer.url,
    balancerAdminUrl: balancer.adminUrl,
    // The API and UI listen on the VMs' loopback only: reach them through an SSH tunnel (infra/README.md).
    consulUiUrl: `http://127.0.0.1:${config.consulUiPort}/ui/`,
    replicaNames,
    activityReplicaNames,
    logsCommand: collector.logsCommand,
  };
}
