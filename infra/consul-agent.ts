// Consul on a VM, as HashiCorp runs it across hosts: one agent per VM in host networking, bound to and
// advertising the VM's private address; servers on the discovery VMs (bootstrap-expect = their count),
// clients elsewhere; every agent joins the servers with retry. The HTTP API listens on loopback and on the
// gateway of the VM's stack network (where the VM's containers reach it), never on the private network.
import net from 'node:net';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { roleOptions, stackContainer, type LogDestination } from './container-settings';
import { httpUrl } from '../lib/endpoints';
import type { VmConfig } from './config';
import type { StackNaming } from './naming';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import { agentImageAndData, CONSUL_DATA_DIR, secureAgentFlags, serverHealthcheck } from './consul-agent-settings';

/**
 * LAN gossip tuned for a few VMs on one private network: a VM that stops answering is suspected after a
 * 300 ms probe timeout (probes every 500 ms) and declared failed 3 × 500 ms later once another member
 * confirms (memberlist's suspicion timeout, suspicion_mult × probe_interval for fewer than 10 nodes), so
 * its services leave the passing set within about 3 s. Consul's defaults (1 s, 500 ms, 4) take about 5-6 s.
 */
export const GOSSIP_LAN_TUNING = 'gossip_lan { probe_interval = "500ms" probe_timeout = "300ms" suspicion_mult = 3 }';

export interface ConsulAgentArgs {
  naming: StackNaming;
  vm: VmConfig;
  collector: LogDestination;
  /** The Consul image the agent's own is built on (consul/Dockerfile: the `consul` user owns the data directory). */
  consulImage: string;
  /** The VM's image platform, from its bootstrap (VmHost.platform). */
  platform: pulumi.Input<string>;
  repoRoot: string;
  /** The agent's HTTP port (the stack's consulUiPort), on loopback and the stack network's gateway. */
  httpPort: number;
  /** The stack network's gateway on this VM: the address the VM's containers reach the agent at. */
  gatewayAddress: string;
  /** The private addresses of the discovery VMs (the servers), in config order. */
  servers: string[];
  gossipKey: pulumi.Input<string>;
  /** The initial management token (a Pulumi secret): ACLs are on, default deny, as on one host. */
  managementToken: pulumi.Output<string>;
}

export class ConsulAgent extends pulumi.ComponentResource {
  readonly containerName: string;
  /** The agent's HTTP address as the VM's containers reach it. */
  readonly httpAddr: string;
  readonly container: docker.Container;
  /** The data volume: a new one on a server holds no ACL state, so the ACL init step runs again. */
  readonly dataVolume: docker.Volume;

  constructor(name: string, args: ConsulAgentArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:ConsulAgent', name, {}, component);
    const { naming, vm } = args;
    const isServer = vm.roles.includes('discovery');
    this.containerName = naming.objectName('consul');
    this.httpAddr = httpUrl(args.gatewayAddress, args.httpPort);
    const bracketed = (address: string) => (net.isIPv6(address) ? `[${address}]` : address);

    const { image, data } = agentImageAndData(name, args, this);

    this.container = stackContainer(
      `${name}-agent`,
      { naming, role: 'consul', logs: args.collector },
      {
        name: this.containerName,
        image: image.repoDigest,
        entrypoints: ['consul'],
        command: [
          'agent',
          ...(isServer ? ['-server', `-bootstrap-expect=${args.servers.length}`, '-ui'] : []),
          `-bind=${vm.privateAddress}`,
          `-advertise=${vm.privateAddress}`,
          // Space-separated: loopback for the VM itself, the gateway for its containers.
          `-client=127.0.0.1 ${args.gatewayAddress}`,
          `-http-port=${args.httpPort}`,
          // No DNS interface: nothing in the stack resolves through Consul.
          '-dns-port=-1',
          `-data-dir=${CONSUL_DATA_DIR}`,
          // The VM's name is the node's: stable across container replacements, unique in the cluster.
          `-node=${vm.name}`,
          ...args.servers.map((server) => `-retry-join=${bracketed(server)}`),
          `-hcl=${GOSSIP_LAN_TUNING}`,
          ...secureAgentFlags({ ...args, nodeName: vm.name, server: isServer }),
        ],
        // For a server's health check: with default deny, listing the raft peers needs a token. A client's
        // check needs none, and a client VM never holds the management token.
        envs: isServer ? [pulumi.interpolate`${CONSUL_TOKEN_ENV}=${args.managementToken}`] : [],
        // Host networking: Consul binds the VM's own addresses, as on a VM without containers.
        networkMode: 'host',
        volumes: [{ volumeName: data.name, containerPath: CONSUL_DATA_DIR }],
        // A client is healthy once it reaches the servers: the datacenter list, which Consul serves to anyone,
        // so the check needs no token.
        healthcheck: isServer
          ? serverHealthcheck(args.httpPort, 24)
          : {
              tests: ['CMD', 'consul', 'catalog', 'datacenters', `-http-addr=127.0.0.1:${args.httpPort}`],
              interval: '5s',
              timeout: '3s',
              retries: 24,
              startPeriod: '10s',
            },
        wait: true,
        waitTimeout: 180,
        destroyGraceSeconds: 10,
      },
      { parent: this, dependsOn },
    );

    this.dataVolume = data;
    this.registerOutputs({ containerName: this.containerName, httpAddr: this.httpAddr });
  }
}
