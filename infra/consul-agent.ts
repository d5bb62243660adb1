// The stack's Consul agents, one per host. On one host: a single server in a container on the stack network,
// its API published on bindAddress. On VMs, as HashiCorp runs it across hosts: one agent per VM in host
// networking, bound to and advertising the VM's private address; servers on the discovery VMs
// (bootstrap-expect = their count), clients elsewhere; every agent joins the servers with retry. There the
// HTTP API listens on loopback and on the gateway of the VM's stack network (where the VM's containers reach
// it), never on the private network.
import net from 'node:net';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { roleOptions, stackContainer, type LogDestination } from './container-settings';
import { httpUrl } from '../lib/endpoints';
import type { StackNaming } from './naming';
import { CONSUL_TOKEN_FILE_ENV } from '../lib/consul-address';
import {
  agentImageAndData,
  agentSecretFiles,
  CONSUL_DATA_DIR,
  MANAGEMENT_TOKEN_FILE,
  secureAgentFlags,
  serverHealthcheck,
} from './consul-agent-settings';
import { SECRETS_DIR, SecretFiles } from './secret-files';

/**
 * LAN gossip tuned for a few VMs on one private network: a VM that stops answering is suspected after a
 * 300 ms probe timeout (probes every 500 ms) and declared failed 3 × 500 ms later once another member
 * confirms (memberlist's suspicion timeout, suspicion_mult × probe_interval for fewer than 10 nodes), so
 * its services leave the passing set within about 3 s. Consul's defaults (1 s, 500 ms, 4) take about 5-6 s.
 */
export const GOSSIP_LAN_TUNING = 'gossip_lan { probe_interval = "500ms" probe_timeout = "300ms" suspicion_mult = 3 }';

/** Consul's HTTP port inside the one host's container (published on consulUiPort). */
const CONSUL_HTTP_PORT = 8500;

/** Where the agent runs: the one host's stack network, or a VM's own network. */
export type AgentPlacement = {
  /** The node's name, stable across container replacements (the data volume outlives them), unique in the cluster. */
  nodeName: string;
} & (
  | {
      network: 'stack';
      networkName: pulumi.Input<string>;
      /** Where the API and UI are published, on httpPort. */
      bindAddress: string;
    }
  | {
      network: 'host';
      privateAddress: string;
      /** The stack network's gateway on this VM: the address the VM's containers reach the agent at. */
      gatewayAddress: string;
      /** The private addresses of the discovery VMs (the servers), in config order. */
      servers: string[];
    }
);

export interface ConsulAgentArgs {
  naming: StackNaming;
  placement: AgentPlacement;
  /** A server (the discovery role); the one host's agent always is. */
  server: boolean;
  collector: LogDestination;
  /** The Consul image the agent's own is built on (consul/Dockerfile: the `consul` user owns the data directory). */
  consulImage: string;
  /** A VM's image platform, from its bootstrap (VmHost.platform); unset on one host. */
  platform?: pulumi.Input<string>;
  repoRoot: string;
  /** The stack's consulUiPort: published on one host, the agent's own HTTP port on a VM. */
  httpPort: number;
  /** Gossip encryption key (a secret; infra/gossip-key.ts). */
  gossipKey: pulumi.Input<string>;
  /** The initial management token (a Pulumi secret): ACLs are on, default deny. */
  managementToken: pulumi.Output<string>;
  /** On VMs: TLS for the agent's RPC (consul-tls.ts): the CA's certificate, and its own certificate and key. */
  tls?: { ca: pulumi.Input<string>; cert: pulumi.Input<string>; key: pulumi.Input<string> };
  /** The secret files of the other roles on this host, by role (file name -> content): held with the agent's own. */
  roleSecrets: Record<string, Record<string, pulumi.Input<string>>>;
}

/** What differs between the two placements: names, addresses and the placement's own flags and container settings. */
interface AgentLayout {
  httpAddr: string;
  uiUrl: string;
  /** The flags before the data directory and node name. */
  command: string[];
  /** The flags after them: joining the servers. */
  join: string[];
  container: Omit<docker.ContainerArgs, 'name' | 'image'>;
}

/** One host: the only server, on the stack network under the alias `consul`, its API published. */
function onStackNetwork(containerName: string, httpPort: number, placement: Extract<AgentPlacement, { network: 'stack' }>): AgentLayout {
  return {
    httpAddr: `http://${containerName}:${CONSUL_HTTP_PORT}`,
    uiUrl: `${httpUrl(placement.bindAddress, httpPort)}/ui/`,
    command: ['agent', '-server', '-bootstrap-expect=1', '-ui', '-client=0.0.0.0', '-bind=0.0.0.0'],
    join: [],
    container: {
      ports: [{ internal: CONSUL_HTTP_PORT, external: httpPort, ip: placement.bindAddress, protocol: 'tcp' }],
      networksAdvanced: [{ name: placement.networkName, aliases: ['consul'] }],
      healthcheck: serverHealthcheck(CONSUL_HTTP_PORT, 12),
      waitTimeout: 120,
    },
  };
}

/** A VM: Consul binds the VM's own addresses in host networking, as on a VM without containers. */
function onHostNetwork(server: boolean, httpPort: number, placement: Extract<AgentPlacement, { network: 'host' }>): AgentLayout {
  const bracketed = (address: string) => (net.isIPv6(address) ? `[${address}]` : address);
  return {
    httpAddr: httpUrl(placement.gatewayAddress, httpPort),
    uiUrl: `${httpUrl('127.0.0.1', httpPort)}/ui/`,
    command: [
      'agent',
      ...(server ? ['-server', `-bootstrap-expect=${placement.servers.length}`, '-ui'] : []),
      `-bind=${placement.privateAddress}`,
      `-advertise=${placement.privateAddress}`,
      // Space-separated: loopback for the VM itself, the gateway for its containers.
      `-client=127.0.0.1 ${placement.gatewayAddress}`,
      `-http-port=${httpPort}`,
      // No DNS interface: nothing in the stack resolves through Consul.
      '-dns-port=-1',
    ],
    join: [...placement.servers.map((address) => `-retry-join=${bracketed(address)}`), `-hcl=${GOSSIP_LAN_TUNING}`],
    container: {
      networkMode: 'host',
      // A client is healthy once it reaches the servers: the datacenter list, which Consul serves to anyone,
      // so the check needs no token.
      healthcheck: server
        ? serverHealthcheck(httpPort, 24)
        : {
            tests: ['CMD', 'consul', 'catalog', 'datacenters', `-http-addr=127.0.0.1:${httpPort}`],
            interval: '5s',
            timeout: '3s',
            retries: 24,
            startPeriod: '10s',
          },
      waitTimeout: 180,
    },
  };
}

export class ConsulAgent extends pulumi.ComponentResource {
  readonly containerName: string;
  /** The node name, which its ACL token is for. */
  readonly nodeName: string;
  /** The agent's HTTP address as the containers of its host reach it. */
  readonly httpAddr: string;
  /** The UI as the user reaches it: the published port, or on a VM an SSH tunnel to its loopback (infra/README.md). */
  readonly uiUrl: string;
  readonly container: docker.Container;
  /** The data volume: a new one on a server holds no ACL state, so the ACL init step runs again. */
  readonly dataVolume: docker.Volume;
  /** This host's secret files: the agent's own and those of the other roles on the host. */
  readonly secrets: SecretFiles;

  constructor(name: string, args: ConsulAgentArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    const { naming, placement } = args;
    // Stacks declared before both layouts shared this component named the one host's `discovery`, of type
    // cnp:infra:Discovery, and its container `discovery-consul`: the aliases keep their resources (the
    // image's and the volume's follow the component's by name).
    const former = { name: 'discovery', type: 'cnp:infra:Discovery' };
    const onOneHost = placement.network === 'stack';
    super('cnp:infra:ConsulAgent', name, {}, onOneHost ? { ...component, aliases: [former] } : component);
    this.containerName = naming.objectName('consul');
    const layout = onOneHost
      ? onStackNetwork(this.containerName, args.httpPort, placement)
      : onHostNetwork(args.server, args.httpPort, placement);
    this.nodeName = placement.nodeName;
    this.httpAddr = layout.httpAddr;
    this.uiUrl = layout.uiUrl;

    const { image, data } = agentImageAndData(name, args, this);
    // Every host builds this image first, so the holder of the host's secret files is created from it.
    this.secrets = new SecretFiles(
      `${name}-secrets`,
      {
        naming,
        image: image.repoDigest,
        files: { ...args.roleSecrets, consul: agentSecretFiles({ ...args, nodeName: this.nodeName }) },
      },
      { parent: this },
    );
    this.container = stackContainer(
      `${name}-agent`,
      { naming, role: 'consul', logs: args.collector },
      {
        name: this.containerName,
        image: image.repoDigest,
        entrypoints: ['consul'],
        command: [...layout.command, `-data-dir=${CONSUL_DATA_DIR}`, `-node=${this.nodeName}`, ...layout.join, ...secureAgentFlags()],
        envs: [
          // The agent reads its files at start: new files of its own replace it (not another role's).
          pulumi.interpolate`SECRET_FILES_VERSION=${this.secrets.versionOf('consul')}`,
          // For a server's health check: with default deny, listing the raft peers needs a token; the agent
          // itself reads none from its environment. A client's check needs none, and a client never holds it.
          ...(args.server ? [`${CONSUL_TOKEN_FILE_ENV}=${SECRETS_DIR}/${MANAGEMENT_TOKEN_FILE}`] : []),
        ],
        ...layout.container,
        volumes: [{ volumeName: data.name, containerPath: CONSUL_DATA_DIR }, this.secrets.volumeFor('consul')],
        wait: true,
        destroyGraceSeconds: 10,
      },
      {
        parent: this,
        // After the holder has written the files it reads.
        dependsOn: [...dependsOn, this.secrets.holder],
        ...(onOneHost ? { aliases: [{ name: 'discovery-consul', parent: pulumi.createUrn(former.name, former.type) }] } : {}),
      },
    );

    this.dataVolume = data;
    this.registerOutputs({ containerName: this.containerName, httpAddr: this.httpAddr, uiUrl: this.uiUrl });
  }
}
