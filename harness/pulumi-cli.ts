// The real Pulumi CLI as tests and scripts run it here: the one `npm run tools` builds (scripts/pulumi-tools.sh),
// offline (no update check, no plugin download: a missing plugin is an error), with the provider stand-ins of
// harness/plugins/bin first on PATH, where the engine takes them for the docker and command plugins.
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
export const BUILT_CLI = path.join(ROOT, '.tools', 'pulumi', 'bin', 'pulumi');
export const PLUGIN_STAND_INS = path.join(ROOT, 'harness', 'plugins', 'bin');

/** Throws, naming the command that builds it, when the CLI has not been built. */
export function requireBuiltCli(): string {
  if (!fs.existsSync(BUILT_CLI)) {
    throw new Error(`the real Pulumi CLI is not built (${BUILT_CLI} is missing): run npm run tools (scripts/pulumi-tools.sh)`);
  }
  return BUILT_CLI;
}

/**
 * The environment for the CLI: `home` holds its PULUMI_HOME. Without PULUMI_BACKEND_URL: scripts/stack.sh sets
 * the project's own; a direct call adds one.
 */
export function pulumiCliEnv(home: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${PLUGIN_STAND_INS}:${process.env.PATH ?? ''}`,
    PULUMI_HOME: path.join(home, '.pulumi-home'),
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
  };
}
