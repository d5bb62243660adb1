// The command provider's stand-in plugin: what pulumi-command v1.2.1 does for local.Command and remote.Command,
// served over gRPC to the real engine (harness/plugins/bin/pulumi-resource-command runs this file).
import { serve, type StandInProvider } from '../provider-server';
import { localCommand } from './local';
import { remoteCommand } from './remote';

const provider: StandInProvider = {
  name: 'command',
  version: '1.2.1',
  // The provider has no configuration of its own.
  checkConfig: (news) => ({ inputs: news, failures: [] }),
  diffConfig: () => ({ changed: [], replaces: [] }),
  configure: () => undefined,
  resources: {
    'command:local:Command': localCommand,
    'command:remote:Command': remoteCommand,
  },
};

void serve(provider);
