// Which Docker engine the stack targets: the local one by default (the default provider, which
// honours DOCKER_HOST), or a remote engine over SSH when dockerHost is set.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';

export function dockerProviderOptions(dockerHost: string): pulumi.ComponentResourceOptions {
  if (dockerHost === '') return {};
  const provider = new docker.Provider('docker-remote', { host: dockerHost });
  return { providers: { docker: provider } };
}
