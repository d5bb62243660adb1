// The hosts the stack runs on, and what differs between them: how pulumi reaches each Docker engine, the
// stack network, the addresses roles publish on, where Consul runs. One host (the local engine, or
// dockerHost) holds every role; on VMs (the `vms` list) each VM holds its own roles and is reached over SSH.
// infra/stack.ts declares the roles over either list the same way.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { subnetGateway, VM_ROLES, type VmRole } from './config';
import { onEngine, singleEngineProvider } from './docker-provider';
import { SshAccess, VmHost } from './vm-host';
import { StackNetwork } from './network';
import { collectorPublishAddress } from './collector';
import type { AgentPlacement } from './consul-agent';
import { httpUrl } from '../lib/endpoints';
import { probeAddress } from '../lib/listen-address';
import type { StackContext } from './stack-outputs';

export interface StackHost {
  /** The VM's name, which prefixes its resources' names and its containers' log tags; '' on the one host. */
  name: string;
  roles: readonly VmRole[];
  /** Options that put a component's docker resources on this host's engine. */
  engine: pulumi.ComponentResourceOptions;
  network: StackNetwork;
  /** The engine's address, for the collector's `docker logs` hint ('' = the local engine). */
  dockerHost: string;
  /** A VM's image platform, from its bootstrap (VmHost.platform); unset on one host, where images are local. */
  platform?: pulumi.Input<string>;
  /** The VM (its bootstrap, provider, and files written on it over SSH); unset on one host. */
  vm?: VmHost;
  /** Where the balancer's public port is published. */
  publicAddress: string;
  /** Where the balancer's admin listener is published: it shows instance addresses, so never a public one. */
  adminAddress: string;
  /** Where the collector's syslog port is published (every engine of the stack sends to it). */
  collectorAddress: string;
  /**
   * On a VM: its private address, where the broker's ports are published and the replicas listen in the VM's
   * own network, for other VMs to reach. Unset on one host: those talk over the stack network.
   */
  hostNetworkAddress?: string;
  consul: AgentPlacement;
  /** How the commands run by `pulumi up` (ACL init, broker registration) reach this host's Consul API. */
  consulApi: { url: string; ssh?: { user: string; host: string; port: number; opts: string[] }; after: pulumi.Resource[] };
}

/** A role's resource name on a host: prefixed by the VM's name, bare on one host. */
export function onHost(host: StackHost, name: string): string {
  return host.name === '' ? name : `${host.name}-${name}`;
}

/** The one host: every role on one Docker engine, on one stack network, with one Consul server. */
export function oneHost({ config, naming }: StackContext): StackHost {
  const engine = onEngine(singleEngineProvider(config.dockerHost));
  const network = new StackNetwork('network', { naming }, engine);
  return {
    name: '',
    roles: VM_ROLES,
    engine,
    network,
    dockerHost: config.dockerHost,
    publicAddress: config.bindAddress,
    adminAddress: config.bindAddress,
    collectorAddress: collectorPublishAddress(config.bindAddress),
    consul: { network: 'stack', nodeName: naming.objectName('consul'), networkName: network.networkName, bindAddress: config.bindAddress },
    // Consul's published port.
    consulApi: { url: httpUrl(probeAddress(config.bindAddress), config.consulUiPort), after: [] },
  };
}

/**
 * The VMs: per VM a bootstrap and a docker provider over SSH (VmHost) and the stack network with an explicit
 * subnet, whose gateway is where the VM's containers reach its Consul agent.
 */
export function vmHosts({ config, naming, repoRoot }: StackContext): StackHost[] {
  const gatewayAddress = subnetGateway(config.vmNetworkSubnet);
  const servers = config.vms.filter((vm) => vm.roles.includes('discovery')).map((vm) => vm.privateAddress);
  const ssh = new SshAccess('ssh', {
    dir: path.join(repoRoot, '.pulumi', 'ssh', naming.stack),
    privateKey: config.sshPrivateKey,
  });
  const vms = config.vms.map((vm) => ({ vm, host: new VmHost(vm.name, { vm, ssh }) }));
  return vms.map(({ vm, host }) => {
    const engine = onEngine(host.provider);
    return {
      name: vm.name,
      roles: vm.roles,
      engine,
      network: new StackNetwork(
        `${vm.name}-network`,
        { naming, ipam: { subnet: config.vmNetworkSubnet, gateway: gatewayAddress } },
        engine,
      ),
      dockerHost: host.dockerHost,
      platform: host.platform,
      vm: host,
      publicAddress: vm.publicAddress,
      adminAddress: vm.privateAddress,
      collectorAddress: vm.privateAddress,
      hostNetworkAddress: vm.privateAddress,
      consul: { network: 'host', nodeName: vm.name, privateAddress: vm.privateAddress, gatewayAddress, servers },
      // The API listens on the VM's loopback only: an SSH local forward to the VM, with the docker providers' ssh settings.
      consulApi: { url: httpUrl('127.0.0.1', config.consulUiPort), ssh: { ...vm.ssh, opts: ssh.sshOpts }, after: [ssh.files] },
    };
  });
}
