// The docker provider stand-in's entry (harness/plugins/bin/pulumi-resource-docker runs it): serves the
// provider over gRPC and prints nothing on stdout but the port.
import { serve } from '../provider-server';
import { dockerStandIn } from './provider';

const provider = dockerStandIn();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    provider.close();
    process.exit(0);
  });
}
serve(provider).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
