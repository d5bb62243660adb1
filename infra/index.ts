// The stack, top to bottom: config in, one layout (one Docker engine, or several VMs) declared, outputs out.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { loadConfig } from './config';
import { StackNaming } from './naming';
import { gossipKey } from './gossip-key';
import { declareSingleHost } from './single-host';
import { declareOnVms } from './vm-stack';

// Validated before any resource is declared: a bad value stops here with one clear Error.
const config = loadConfig();
const context = {
  config,
  naming: new StackNaming(pulumi.getProject(), pulumi.getStack()),
  repoRoot: path.resolve(__dirname, '..'),
  // Every Consul agent encrypts its gossip, on one host as on VMs.
  gossipKey: gossipKey(config.consulGossipKey),
};

const stack = config.vms.length > 0 ? declareOnVms(context) : declareSingleHost(context);

export const balancerUrl = stack.balancerUrl;
export const consulUiUrl = stack.consulUiUrl;
export const replicaNames = stack.replicaNames;
export const logsCommand = stack.logsCommand;
