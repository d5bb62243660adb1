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

const discovery = new Discovery(
  'discovery',
  {
    naming,
    networkName: network.networkName,
    collector,
    consulImage: config.consulImage,
    bindAddress: config.bindAddress,
    consulUiPort: config.consulUiPort,
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
    replicas: config.replicas,
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
    balancerAdminPort: config.balancerAdminPort,
  },
  { ...onDocker, dependsOn: [discovery.container] },
);

export const balancerUrl = balancer.url;
export const balancerAdminUrl = balancer.adminUrl;
export const consulUiUrl = discovery.uiUrl;
export const replicaNames = replicas.names;
export const logsCommand = collector.logsCommand;
