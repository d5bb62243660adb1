// The docker provider stand-in: its config (host, sshOpts) picks the engine, and each resource type the
// program uses has its handlers. One plugin process serves one provider instance, as the engine starts them.
import { isUnknown, type CheckFailure, type Props, type StandInProvider } from '../provider-server';
import type { Engine } from './cli';
import { checkInputs, diffInputs } from './checked';
import { containerHandlers } from './container';
import { Engines } from './engines';
import { imageHandlers } from './image';
import { CONTAINER, IMAGE, NETWORK, PROVIDER, PROVIDER_CONFIG_RULES, VOLUME } from './inputs';
import { networkHandlers, volumeHandlers } from './named-objects';
import { planDockerProvider } from './plans';

/** The @pulumi/docker version the program is written against. */
export const DOCKER_PROVIDER_VERSION = '5.2.0';

export interface DockerStandIn extends StandInProvider {
  /** Removes the ssh wrappers the engine of an ssh:// host needed. */
  close(): void;
}

/** `projectDir`: where relative build contexts resolve (the engine starts plugins in the program's directory). */
export function dockerStandIn(projectDir: string = process.cwd()): DockerStandIn {
  const engines = new Engines();
  let engine: Engine | undefined;
  const current = () => engine;
  const checkConfig = (news: Props): { inputs: Props; failures: CheckFailure[] } =>
    checkInputs(PROVIDER, PROVIDER_CONFIG_RULES, news, (values) => planDockerProvider(PROVIDER, values));
  return {
    name: 'docker',
    version: DOCKER_PROVIDER_VERSION,
    checkConfig,
    diffConfig: (olds, news) => diffInputs(PROVIDER_CONFIG_RULES, olds, news),
    configure(args) {
      // In a preview the host may not be known yet (a VM's address); nothing is created with it then.
      if (isUnknown(args)) return;
      engine = engines.forProvider(planDockerProvider(PROVIDER, args));
    },
    resources: {
      [CONTAINER]: containerHandlers(current),
      [IMAGE]: imageHandlers(current, projectDir),
      [NETWORK]: networkHandlers(current),
      [VOLUME]: volumeHandlers(current),
    },
    close: () => engines.close(),
  };
}
