// The stack over a list of hosts (infra/hosts.ts: the one host with every role, or the VMs with theirs):
// per host its Consul agent, then by role the collector, the broker, the hello and activity replicas
// (placed by infra/placement.ts) and the balancer, each on the engine of the host that runs it.
import * as pulumi from '@pulumi/pulumi';
import type { VmRole } from './config';
import { onHost, type StackHost } from './hosts';
import { AppBundle } from './bundle';
import { LogCollector } from './collector';
import { ConsulAgent } from './consul-agent';
import {
  ADMIN_TLS_FILES,
  agentCertificate,
  NATS_CA_FILE,
  consulCa,
  type CertificateAndKey,
  privateAddressCertificate,
  replicaCertificate,
  REPLICA_TLS_FILES,
  UPSTREAM_CA_FILE,
} from './consul-tls';
import { collectorCertificate, daemonTlsFiles, daemonTlsPaths } from './syslog-tls';
import { ACTIVITY_REPLICAS, HELLO_REPLICAS, ServiceReplicas, type ReplicaKind } from './replicas';
import { Broker, brokerRegistration, BROKER_TLS_FILES, brokerTlsConfig } from './broker';
import { Balancer } from './balancer';
import { PUBLIC_TLS_FILES, publicTls } from './public-tls';
import { placeReplicas, type ReplicaRole } from './placement';
import type { LogDestination } from './container-settings';
import { ADMIN_TOKEN_FILE, CONSUL_TOKEN_FILE, SECRETS_DIR } from './secret-files';
import { aclInit, roleTokenOf } from './consul-acl';
import { activityRole, balancerRole, brokerRole, replicaRole, type AclRole } from '../lib/consul-acl';
import { ACTIVITY_SERVICE_NAME } from '../lib/service-name';
import type { StackContext, StackOutputs } from './stack-outputs';

export function declareStack(
  { config, naming, repoRoot, gossipKey, consulManagementToken, balancerAdminToken }: StackContext,
  hosts: StackHost[],
): StackOutputs {
  // config.ts checks that exactly one host has each of these roles (the broker: one or three).
  const only = (role: VmRole): StackHost => hosts.find((host) => host.roles.includes(role))!;
  const tokenOf = (role: AclRole) => roleTokenOf(consulManagementToken, role);
  // HTTPS at the edge, when on: the operator's certificate or one the stack makes for the balancer's address.
  const edgeTls = publicTls(config, only('balancer').publicAddress, repoRoot);

  const bundle = new AppBundle('bundle', { repoRoot });

  // Consul's RPC, the syslog stream and the gateway's requests to replicas cross the network between VMs: TLS,
  // with a CA of the stack's (infra/consul-tls.ts). On one host they stay on one engine.
  const tlsCa = hosts.some((host) => host.consul.network === 'host') ? consulCa(repoRoot) : undefined;

  // Every container on every host logs to it over TCP (TLS between VMs), and is created after it (stackContainer's dependsOn).
  const collectorHost = only('collector');
  const daemonFiles = daemonTlsPaths(naming);
  // On a VM (every host then runs its agent in its own network), the address its certificates name.
  const vmAddressOf = (host: StackHost) => (tlsCa && host.consul.network === 'host' ? host.consul.privateAddress : undefined);
  const collector = new LogCollector(
    onHost(collectorHost, 'collector'),
    {
      naming,
      networkName: collectorHost.network.networkName,
      repoRoot,
      baseImage: config.baseImage,
      publishAddress: collectorHost.collectorAddress,
      collectorPort: config.collectorPort,
      dockerHost: collectorHost.dockerHost,
      platform: collectorHost.platform,
      tls:
        tlsCa && vmAddressOf(collectorHost) !== undefined
          ? {
              ca: tlsCa.cert,
              ...collectorCertificate(`${collectorHost.name}-collector-tls`, {
                repoRoot,
                ca: tlsCa,
                privateAddress: vmAddressOf(collectorHost)!,
              }),
              daemonFiles,
            }
          : undefined,
    },
    collectorHost.engine,
  );
  // Containers of one name run on several VMs (every VM's Consul agent): their logs carry the VM's name too,
  // so the collector files them apart (`<vm>.<container>.log`). A VM's containers start once its daemon's
  // TLS files are there.
  const daemonTls = new Map<StackHost, pulumi.Resource>();
  for (const host of hosts) {
    const privateAddress = vmAddressOf(host);
    if (!tlsCa || !host.vm || privateAddress === undefined) continue;
    daemonTls.set(host, daemonTlsFiles(host.vm, { vmName: host.name, privateAddress, repoRoot, ca: tlsCa, paths: daemonFiles }));
  }
  const logsFrom = (host: StackHost): LogDestination => {
    if (host.name === '') return collector;
    const files = daemonTls.get(host);
    return {
      dependsOn: [...collector.dependsOn, ...(files ? [files] : [])],
      logSettingsFor: (tag) => collector.logSettingsFor(pulumi.interpolate`${host.name}.${tag}`),
    };
  };

  // The certificate the replicas of both services on a VM serve HTTPS with (the gateway may be on another VM).
  // Each VM's certificates are steps run on this machine; only that VM uses them, so a dead VM left behind
  // (scripts/vm-forget.ts) takes them along.
  // A certificate of the stack's CA for each host with the role, by host.
  const certificatesFor = (roles: VmRole[], make: (host: StackHost, privateAddress: string) => CertificateAndKey) =>
    new Map(
      hosts.flatMap((host) => {
        const address = vmAddressOf(host);
        return address !== undefined && roles.some((role) => host.roles.includes(role)) ? [[host, make(host, address)] as const] : [];
      }),
    );
  const replicaTls = certificatesFor(['replicas', 'activity'], (host, privateAddress) =>
    replicaCertificate(`${host.name}-replica-tls`, {
      repoRoot,
      ca: tlsCa!,
      privateAddress,
      nodeName: host.consul.nodeName,
      serviceNames: [config.serviceName, ACTIVITY_SERVICE_NAME],
    }),
  );
  // The broker's: its clients and, with three, its peers reach it on the private address.
  const brokerTls = certificatesFor(['broker'], (host, privateAddress) =>
    privateAddressCertificate(`${host.name}-broker-tls`, { repoRoot, ca: tlsCa!, privateAddress }),
  );
  // The balancer's admin listener's, on its VM's private address.
  const adminTls = certificatesFor(['balancer'], (host) =>
    privateAddressCertificate(`${host.name}-admin-tls`, { repoRoot, ca: tlsCa!, privateAddress: host.adminAddress }),
  );
  const brokerHosts = hosts.filter((host) => host.roles.includes('broker'));
  const clustered = brokerHosts.length > 1;

  // The secret files of the roles on a host besides Consul's own (infra/secret-files.ts): each role's token.
  const roleSecrets = (host: StackHost): Record<string, Record<string, pulumi.Input<string>>> => {
    const tokens: [VmRole, string, AclRole][] = [
      ['replicas', 'replica', replicaRole(config.serviceName)],
      ['activity', 'activity', activityRole()],
      ['balancer', 'balancer', balancerRole()],
    ];
    const files: Record<string, Record<string, pulumi.Input<string>>> = Object.fromEntries(
      tokens.filter(([hostRole]) => host.roles.includes(hostRole)).map(([, role, acl]) => [role, { [CONSUL_TOKEN_FILE]: tokenOf(acl) }]),
    );
    if (files.balancer) {
      files.balancer[ADMIN_TOKEN_FILE] = balancerAdminToken;
      if (edgeTls) Object.assign(files.balancer, { [PUBLIC_TLS_FILES.cert]: edgeTls.cert, [PUBLIC_TLS_FILES.key]: edgeTls.key });
      if (tlsCa) {
        // On a VM its admin listener faces the private network: HTTPS with a certificate of the stack's CA.
        const admin = adminTls.get(host)!;
        Object.assign(files.balancer, {
          [UPSTREAM_CA_FILE]: tlsCa.cert,
          [ADMIN_TLS_FILES.cert]: admin.cert,
          [ADMIN_TLS_FILES.key]: admin.key,
        });
      }
    }
    const ownTls = replicaTls.get(host);
    for (const role of ['replica', 'activity'].filter((r) => ownTls && files[r])) {
      // Their certificate, and the CA they verify the broker with (NATS_CA_FILE).
      Object.assign(files[role], {
        [REPLICA_TLS_FILES.cert]: ownTls!.cert,
        [REPLICA_TLS_FILES.key]: ownTls!.key,
        [NATS_CA_FILE]: tlsCa!.cert,
      });
    }
    const ownBrokerTls = brokerTls.get(host);
    if (ownBrokerTls) {
      files.broker = {
        [BROKER_TLS_FILES.config]: brokerTlsConfig(repoRoot, SECRETS_DIR, clustered),
        [BROKER_TLS_FILES.ca]: tlsCa!.cert,
        [BROKER_TLS_FILES.cert]: ownBrokerTls.cert,
        [BROKER_TLS_FILES.key]: ownBrokerTls.key,
      };
    }
    return files;
  };

  // Consul's RPC: TLS both ways, each agent with its own certificate.
  const tlsOf = (host: StackHost) => {
    const privateAddress = vmAddressOf(host);
    if (privateAddress === undefined) return undefined;
    const server = host.roles.includes('discovery');
    const own = agentCertificate(`${host.name}-consul-tls`, { repoRoot, ca: tlsCa!, privateAddress, server }, {});
    return { ca: tlsCa!.cert, ...own };
  };

  const agents = new Map<StackHost, ConsulAgent>();
  const declareAgent = (host: StackHost, after: pulumi.Resource[]) =>
    agents.set(
      host,
      new ConsulAgent(
        onHost(host, 'consul'),
        {
          naming,
          placement: host.consul,
          server: host.roles.includes('discovery'),
          collector: logsFrom(host),
          consulImage: config.consulImage,
          platform: host.platform,
          repoRoot,
          httpPort: config.consulUiPort,
          gossipKey,
          managementToken: consulManagementToken,
          roleSecrets: roleSecrets(host),
          tls: tlsOf(host),
        },
        // An agent in the VM's network binds the stack network's gateway address: the network comes first.
        { ...host.engine, dependsOn: [...(host.consul.network === 'host' ? [host.network.network] : []), ...after] },
      ),
    );
  const servers = hosts.filter((host) => host.roles.includes('discovery'));
  servers.forEach((host) => declareAgent(host, []));

  // Puts the policies and role tokens into Consul once the servers are up, through the first one's API.
  const aclHost = servers[0];
  const consulAcl = aclInit(
    'consul-acl-init',
    {
      repoRoot,
      consulHttpAddr: aclHost.consulApi.url,
      managementToken: consulManagementToken,
      serviceName: config.serviceName,
      agentNodes: hosts.map((host) => host.consul.nodeName),
      consulIdentity: servers.flatMap((host) => [agents.get(host)!.container.id, agents.get(host)!.dataVolume.name]),
      ssh: aclHost.consulApi.ssh,
    },
    { dependsOn: [...aclHost.consulApi.after, ...servers.map((host) => agents.get(host)!.container)] },
  );
  // The other agents start once their token exists: an agent whose token Consul does not know yet has its node
  // and its services' sync blocked until its next full anti-entropy run, about a minute later. And nothing
  // outside a replicas or activity VM depends on that VM, so a dead one can leave the state alone
  // (scripts/vm-forget.ts).
  hosts.filter((host) => !servers.includes(host)).forEach((host) => declareAgent(host, [consulAcl]));

  // Each role's containers talk to their own host's agent.
  const roleArgs = (host: StackHost) => ({
    naming,
    networkName: host.network.networkName,
    collector: logsFrom(host),
    bundle: bundle.build,
    repoRoot,
    baseImage: config.baseImage,
    serviceName: config.serviceName,
    consulHttpAddr: agents.get(host)!.httpAddr,
    platform: host.platform,
  });

  // The brokers, each registered on its host's agent, whose check reaches it by container name on one host and
  // on the private address on a VM. Three broker VMs form one JetStream cluster, routed over their private
  // addresses, and the clients keep the events' stream on all three (USER_EVENTS_REPLICAS).
  const brokers = brokerHosts.map((brokerHost) => {
    const broker = new Broker(
      onHost(brokerHost, 'broker'),
      {
        naming,
        networkName: brokerHost.network.networkName,
        collector: logsFrom(brokerHost),
        repoRoot,
        natsImage: config.natsImage,
        publishOn: brokerHost.hostNetworkAddress,
        platform: brokerHost.platform,
        cluster: clustered
          ? {
              name: naming.objectName('events'),
              serverName: `${brokerHost.name}-nats`,
              peers: brokerHosts.filter((other) => other !== brokerHost).map((other) => other.hostNetworkAddress!),
            }
          : undefined,
        tlsSecrets: brokerTls.has(brokerHost) ? agents.get(brokerHost)!.secrets.volumeFor('broker') : undefined,
        filesVersion: brokerTls.has(brokerHost) ? agents.get(brokerHost)!.secrets.versionOf('broker') : undefined,
      },
      // After the holder of its files.
      { ...brokerHost.engine, ...(brokerTls.has(brokerHost) ? { dependsOn: [agents.get(brokerHost)!.secrets.holder] } : {}) },
    );
    const brokerAgent = agents.get(brokerHost)!;
    const registered = brokerRegistration(
      // One broker keeps the step's first name.
      clustered ? onHost(brokerHost, 'broker-registration') : 'broker-registration',
      {
        repoRoot,
        consulHttpAddr: brokerHost.consulApi.url,
        token: tokenOf(brokerRole()),
        brokerAddress: broker.address,
        agentIdentity: [brokerAgent.container.id, brokerAgent.dataVolume.name],
        ssh: brokerHost.consulApi.ssh,
      },
      { dependsOn: [...brokerHost.consulApi.after, brokerAgent.container, consulAcl] },
    );
    return [broker.container, registered];
  });
  const streamReplicas = `USER_EVENTS_REPLICAS=${brokerHosts.length}`;

  // Each service's replicas over the hosts of its role; on a VM in the VM's network, on the first free port of
  // the service's range.
  const declareReplicas = (
    kind: ReplicaKind,
    role: ReplicaRole,
    count: number,
    service: { name: string; sourceHash: string; settings?: string[] },
    after: pulumi.Resource[],
  ): pulumi.Output<string[]> => {
    const names = new Map<number, pulumi.Output<string>>();
    for (const [hostName, indices] of placeReplicas(count, hosts, role)) {
      const host = hosts.find((h) => h.name === hostName)!;
      const replicas = new ServiceReplicas(
        onHost(host, kind.group),
        {
          ...roleArgs(host),
          kind,
          serviceName: service.name,
          sourceHash: service.sourceHash,
          indices,
          // On a VM they serve HTTPS (the gateway may be on another VM).
          settings: [
            ...(service.settings ?? []),
            ...(replicaTls.get(host)
              ? [
                  `TLS_CERT_FILE=${SECRETS_DIR}/${REPLICA_TLS_FILES.cert}`,
                  `TLS_KEY_FILE=${SECRETS_DIR}/${REPLICA_TLS_FILES.key}`,
                  `NATS_CA_FILE=${SECRETS_DIR}/${NATS_CA_FILE}`,
                ]
              : []),
          ],
          certificate: replicaTls.get(host)?.cert,
          vmAddress: host.hostNetworkAddress,
          secrets: agents.get(host)!.secrets.volumeFor(kind.role),
        },
        { ...host.engine, dependsOn: [agents.get(host)!.container, consulAcl, ...after] },
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
    {
      name: config.serviceName,
      sourceHash: bundle.serviceSourceHash,
      settings: [streamReplicas, `OUTBOX_MAX_ENTRIES=${config.outboxMaxEntries}`],
    },
    [],
  );
  // The activity replicas subscribe at start: the broker is up and registered first.
  const activityReplicaNames = declareReplicas(
    ACTIVITY_REPLICAS,
    'activity',
    config.activityReplicas,
    {
      name: ACTIVITY_SERVICE_NAME,
      sourceHash: bundle.activitySourceHash,
      settings: [`ACTIVITY_DURABLE_INACTIVE_SECONDS=${config.activityDurableInactiveSeconds}`, streamReplicas],
    },
    brokers.flat(),
  );

  const balancerHost = only('balancer');
  const balancer = new Balancer(
    onHost(balancerHost, 'balancer'),
    {
      ...roleArgs(balancerHost),
      sourceHash: bundle.balancerSourceHash,
      bindAddress: balancerHost.publicAddress,
      balancerPort: config.balancerPort,
      balancerHttpsPort: config.balancerHttpsPort,
      tls: edgeTls,
      upstreamTls: tlsCa !== undefined,
      adminTls: adminTls.get(balancerHost),
      adminAddress: balancerHost.adminAddress,
      balancerAdminPort: config.balancerAdminPort,
      rateLimitPerClient: config.gatewayRateLimit,
      secrets: agents.get(balancerHost)!.secrets.volumeFor('balancer'),
    },
    // After the holder of its files: a new certificate is written before the gateway that reads it starts.
    { ...balancerHost.engine, dependsOn: [agents.get(balancerHost)!.container, agents.get(balancerHost)!.secrets.holder, consulAcl] },
  );

  return {
    balancerUrl: balancer.url,
    balancerCaCertificate: edgeTls?.ca,
    // The step's output is secret as a whole (it holds the key); the CA's certificate is not.
    internalCaCertificate: tlsCa ? pulumi.unsecret(tlsCa.cert) : undefined,
    balancerAdminUrl: balancer.adminUrl,
    consulUiUrl: agents.get(aclHost)!.uiUrl,
    replicaNames,
    activityReplicaNames,
    logsCommand: collector.logsCommand,
  };
}
