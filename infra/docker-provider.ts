// The Docker engines the stack targets, each through an explicit provider: no docker resource uses the
// default provider (Pulumi.dev.yaml also disables it, so a forgotten `provider` fails instead of
// silently going to the local engine).
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';

/**
 * The one engine of the single-host layout: `dockerHost` when set, else the local engine (a provider
 * without `host` honours DOCKER_HOST, as the default provider did). Moving an existing stack from the
 * default provider to this one replaces nothing: the engine asks the new provider's DiffConfig, which sees
 * the same settings (pulumi/pulumi pkg/resource/deploy/step_generator.go, providerChanged).
 */
export function singleEngineProvider(dockerHost: string): docker.Provider {
  // The remote one keeps the name it always had: a new name would be a new provider for every resource.
  if (dockerHost !== '') return new docker.Provider('docker-remote', { host: dockerHost });
  return new docker.Provider('docker-local', {});
}

/** Component options that hand a provider to every docker resource below a component. */
export function onEngine(provider: docker.Provider): pulumi.ComponentResourceOptions {
  return { providers: { docker: provider } };
}
