// The stack, top to bottom: config in, one component per role wired together, outputs out.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { loadConfig } from './config';
import { StackNaming } from './naming';
import { dockerProviderOptions } from './docker-provider';
import { StackNetwork } from './network';
import { AppBundle } from './bundle';
import { LogCollector } from './collector';
import { Discovery } from './discovery';
import { ServiceReplicas } from './replicas';
import { Balancer } from './balancer';
import { aclInit, generatedSecret, roleTokenOf } from './consul-acl';
import { balancerRole, replicaRole } from '../lib/consul-acl';
import { httpUrl } from '../lib/endpoints';
import { probeAddress } from '../lib/listen-address';

// Validated before any resource is declared: a bad value stops here with one clear Error.
const config = loadConfig();
const naming = new StackNaming(pulumi.getProject(), pulumi.getStack());
const repoRoot = path.resolve(__dirname, '..');
const onDocker = dockerProviderOptions(config.dockerHost);

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

// Consul's ACLs: one generated secret; every role's token is derived from it (infra/consul-acl.ts).
const consulManagementToken = generatedSecret('consul-management-token');

const discovery = new Discovery(
  'discovery',
  {
    naming,
    networkName: network.networkName,
    collector,
    consulImage: config.consulImage,
    bindAddress: config.bindAddress,
    consulUiPort: config.consulUiPort,
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
    replicas: config.replicas,
    serviceName: config.serviceName,
    consulHttpAddr: discovery.httpAddr,
    consulToken: roleTokenOf(consulManagementToken, replicaRole(config.serviceName)),
  },
  { ...onDocker, dependsOn: [discovery.container, consulAcl] },
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
    consulToken: roleTokenOf(consulManagementToken, balancerRole(config.serviceName)),
  },
  { ...onDocker, dependsOn: [discovery.container, consulAcl] },
);

export const balancerUrl = balancer.url;
export const consulUiUrl = discovery.uiUrl;
/** The token for Consul's UI and CLI (`pulumi stack output --show-secrets consulToken`); a secret. */
export const consulToken = consulManagementToken;
export const replicaNames = replicas.names;
export const logsCommand = collector.logsCommand;
