// `npm run vm:forget -- <vm> [--stack dev]`: leaves behind a VM that died for good, when it held only `replicas`
// and/or `activity` roles. Through the project's Pulumi CLI (scripts/stack.sh: its backend and passphrase), it
// removes every resource of that VM from the stack's state in one `pulumi state delete` (the CLI orders them and
// refuses if anything else depends on one; no --target-dependents, no --force), without contacting the VM. Through
// the ACL step's SSH tunnel to a Consul server, it first checks that Consul sees the node as gone, then removes it
// (`force-leave -prune`: its services leave the catalog) and deletes its agent token and policy. The user then
// removes the VM from `vms` and runs `npm run up`, which places its replicas on the VMs left (infra/README.md,
// "When a VM dies for good").
import { execFile } from 'node:child_process';
import path from 'node:path';
import { aclPlan, agentRole } from '../lib/consul-acl';
import { parseConsulAddress } from '../lib/consul-address';
import { parseSshTunnelEnv, withConsulApi } from '../lib/ssh-tunnel';

const USAGE = 'usage: npm run vm:forget -- <vm name> [--stack dev]';
const ROOT = path.resolve(__dirname, '..');

/** The roles whose VM holds nothing another VM needs: only its own replicas, which `pulumi up` places elsewhere. */
export const FORGETTABLE_ROLES: readonly string[] = ['replicas', 'activity'];

/** A resource of `pulumi stack export` (apitype.ResourceV3), the fields that link it to others. */
export interface StateResource {
  urn: string;
  type: string;
  custom: boolean;
  parent?: string;
  /** `<provider URN>::<provider id>`. */
  provider?: string;
  dependencies?: string[];
  propertyDependencies?: Record<string, string[]>;
  deletedWith?: string;
  inputs?: Record<string, unknown>;
}

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf('::') + 2);
const providerUrn = (reference: string) => reference.slice(0, reference.lastIndexOf('::'));

/** What a resource refers to: its parent, provider, dependencies, property dependencies and deletedWith. */
function references(r: StateResource): string[] {
  return [
    ...(r.parent ? [r.parent] : []),
    ...(r.provider ? [providerUrn(r.provider)] : []),
    ...(r.dependencies ?? []),
    ...Object.values(r.propertyDependencies ?? {}).flat(),
    ...(r.deletedWith ? [r.deletedWith] : []),
  ];
}

/**
 * The resources of VM `vm` (infra/stack.ts): its VmHost with everything under it (bootstrap, provider),
 * every resource on that provider, what those parent, the components all of whose children are among them
 * (its network, Consul agent, replicas), and the local commands named after the VM that only they use (its certificates). `dependents`: resources outside that set that refer to one inside.
 */
export function vmResources(resources: readonly StateResource[], vm: string): { urns: string[]; dependents: string[] } {
  const host = resources.find((r) => r.type === 'cnp:infra:VmHost' && nameOf(r.urn) === vm);
  if (!host) return { urns: [], dependents: [] };
  const on = new Set([host.urn]);
  const childrenOf = (urn: string) => resources.filter((r) => r.parent === urn);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of resources) {
      if (on.has(r.urn)) continue;
      const below = (r.parent !== undefined && on.has(r.parent)) || (r.provider !== undefined && on.has(providerUrn(r.provider)));
      const children = r.custom ? [] : childrenOf(r.urn);
      if (below || (children.length > 0 && children.every((c) => on.has(c.urn)))) {
        on.add(r.urn);
        grew = true;
      }
    }
  }
  // A step run on this machine for the VM alone (`<vm>-consul-tls`, `<vm>-syslog-tls`: its certificates): named after the VM,
  // and nothing but the VM's resources use it.
  for (const r of resources) {
    if (on.has(r.urn) || r.type !== 'command:local:Command' || !nameOf(r.urn).startsWith(`${vm}-`)) continue;
    const users = resources.filter((other) => references(other).includes(r.urn));
    if (users.length > 0 && users.every((user) => on.has(user.urn))) on.add(r.urn);
  }
  const dependents = resources
    .filter((r) => !on.has(r.urn))
    .flatMap((r) =>
      references(r)
        .filter((urn) => on.has(urn))
        .map((urn) => `${nameOf(r.urn)} depends on ${nameOf(urn)}`),
    );
  return { urns: resources.filter((r) => on.has(r.urn)).map((r) => r.urn), dependents: [...new Set(dependents)] };
}

/** Throws, naming its roles and what to do instead, unless VM `vm` of `vms` holds only forgettable roles. */
export function checkForgettable(vms: ReadonlyArray<{ name: string; roles: string[] }>, vm: string): void {
  const entry = vms.find((v) => v.name === vm);
  if (!entry)
    throw new Error(
      `${vm} is not in the stack's vms (${vms.map((v) => v.name).join(', ') || 'none'}): run this before removing it from vms, which is where its roles are read`,
    );
  const others = entry.roles.filter((role) => !FORGETTABLE_ROLES.includes(role));
  if (others.length > 0)
    throw new Error(
      `${vm} holds the roles ${entry.roles.join(', ')}: only a VM whose roles are all among ${FORGETTABLE_ROLES.join(', ')} can be left ` +
        `behind (nothing else needs it). A VM with ${others.join(', ')} cannot: bring it back, or a new VM with the same name and ` +
        `address (its data volume restored), then npm run pulumi -- refresh --yes and npm run up; or redeploy the stack ` +
        `(infra/README.md, "When a VM dies for good")`,
    );
}

/** A secret's envelope in the state: this key with this value (sdk/go/common/resource/sig: `Key`, `Secret`). */
const [SIG_KEY, SECRET_SIG] = ['4dabf18193072939515e22adb298388d', '1b47061264138c4ac30d75fd1eb44270'];

/** `value` with every secret envelope of `pulumi stack export --show-secrets` replaced by its plaintext value. */
function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  if (object[SIG_KEY] === SECRET_SIG && typeof object.plaintext === 'string') return unwrapSecrets(JSON.parse(object.plaintext));
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unwrapSecrets(v)]));
}

/** serf's member states as /v1/agent/members reports them (hashicorp/serf serf/serf.go MemberStatus). */
const MEMBER_STATUS = ['none', 'alive', 'leaving', 'left', 'failed'];

async function consul(url: string, token: string, method: string, apiPath: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}${apiPath}`, { method, headers: { 'X-Consul-Token': token }, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  // Consul 1.8 answers a read of an ACL object that does not exist with 403 "ACL not found".
  if (res.status === 404 || (res.status === 403 && /ACL not found/i.test(text))) return { status: 404, body: undefined };
  if (res.status >= 400) throw new Error(`Consul answered ${method} ${apiPath} with ${res.status}: ${text.trim()}`);
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

function parseArgs(argv: string[]): { vm: string; stack: string } {
  let stack = 'dev';
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--stack') {
      if (argv[i + 1] === undefined) throw new Error(`--stack needs a stack name\n${USAGE}`);
      stack = argv[++i];
    } else if (argv[i].startsWith('-')) throw new Error(`${argv[i]} is not an option of this command\n${USAGE}`);
    else names.push(argv[i]);
  }
  if (names.length !== 1) throw new Error(`name one VM\n${USAGE}`);
  return { vm: names[0], stack };
}

async function main(): Promise<void> {
  const { vm, stack } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const seconds = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  // The CLI the project runs (scripts/stack.sh: the user's, the one npm run tools built, or the npm package's).
  const pulumi = (args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile(
        'bash',
        [path.join(ROOT, 'scripts/stack.sh'), 'pulumi', ...args, '--stack', stack, '--non-interactive'],
        { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 },
        (error, stdout, stderr) =>
          error ? reject(new Error(`pulumi ${args[0]} ${args[1] ?? ''} failed: ${stderr.trim() || error.message}`)) : resolve(stdout),
      ),
    );

  const vmsConfig = await pulumi(['config', 'get', 'vms', '--json']).catch((error: Error) => {
    if (/configuration key .* not found/.test(error.message)) return '{}';
    throw error;
  });
  const vms = (JSON.parse(vmsConfig) as { objectValue?: Array<{ name: string; roles: string[] }> }).objectValue;
  if (!Array.isArray(vms)) throw new Error(`the stack ${stack} has no vms: this command is for a stack deployed on VMs`);
  checkForgettable(vms, vm);

  // Secrets shown: the ACL step's environment holds how to reach Consul (its address, the management token, the
  // SSH tunnel's settings). Kept in memory only.
  const exported = JSON.parse(await pulumi(['stack', 'export', '--show-secrets'])) as { deployment: { resources?: StateResource[] } };
  const resources = exported.deployment.resources ?? [];
  const { urns, dependents } = vmResources(resources, vm);
  if (dependents.length > 0) {
    // A stack last deployed before the ACL step waited for the discovery VMs' agents only: `up` records the new order.
    const why = dependents.every((d) => d.startsWith('consul-acl-init '))
      ? `the stack was last deployed by a version of the program whose ACL step waited for every VM's agent: deploy this version once while every VM answers`
      : `infra/README.md, "When a VM dies for good"`;
    throw new Error(`${vm} cannot be dropped from the state alone: ${dependents.join('; ')} (${why}), or bring ${vm} back`);
  }

  const aclStep = resources.find((r) => r.type === 'command:local:Command' && nameOf(r.urn) === 'consul-acl-init');
  const env = unwrapSecrets(aclStep?.inputs?.environment) as Record<string, string> | undefined;
  const address = parseConsulAddress(env?.CONSUL_HTTP_ADDR ?? '');
  const token = env?.CONSUL_HTTP_TOKEN;
  if (!address || !token) throw new Error(`the state of ${stack} has no consul-acl-init step with Consul's address and token`);
  const log = (line: string) => process.stdout.write(`vm:forget: ${line}\n`);

  await withConsulApi(address, parseSshTunnelEnv(env), log, async (url) => {
    const members = (await consul(url, token, 'GET', '/v1/agent/members')).body as Array<{ Name: string; Status: number }>;
    const status = MEMBER_STATUS[members.find((m) => m.Name === vm)?.Status ?? 0] ?? 'unknown';
    // A live VM's containers would go on running unmanaged: remove it from vms and run npm run up instead.
    if (status === 'alive' || status === 'leaving')
      throw new Error(
        `Consul sees ${vm} ${status}: this command is for a VM that is gone. To retire a VM that answers, remove it from vms and run npm run up`,
      );
    log(`Consul sees ${vm} ${status === 'none' ? 'not at all' : status}`);

    if (urns.length === 0) log(`nothing of ${vm} is left in the state of ${stack}`);
    else {
      // One state edit: the CLI orders the deletions (children and dependents first) and writes the state once.
      await pulumi(['state', 'delete', '--yes', ...urns]);
      log(`${urns.length} resources of ${vm} removed from the state of ${stack} (${vm} itself not contacted), ${seconds()}`);
    }

    if (status !== 'none') {
      await consul(url, token, 'PUT', `/v1/agent/force-leave/${encodeURIComponent(vm)}?prune`);
      log(`Consul: ${vm} forced to leave and pruned; the catalog drops it and its services`);
    }
    // Its agent token was on the dead VM's disk: revoked, with its policy.
    const role = agentRole(vm).role;
    const [agentToken] = aclPlan(token, [agentRole(vm)]).tokens;
    await consul(url, token, 'DELETE', `/v1/acl/token/${agentToken.accessorId}`);
    const policy = await consul(url, token, 'GET', `/v1/acl/policy/name/${role}`);
    const policyId = (policy.body as { ID?: string } | undefined)?.ID;
    if (policy.status === 200 && policyId) await consul(url, token, 'DELETE', `/v1/acl/policy/${policyId}`);
    log(`Consul: the token and policy ${role} deleted`);
  });

  const index = vms.findIndex((v) => v.name === vm);
  log(`done in ${seconds()}. Now remove ${vm} from vms and deploy; its replicas go to the VMs left:`);
  const up = stack === 'dev' ? 'npm run up' : `npm run pulumi -- up --stack ${stack}`;
  process.stdout.write(`  npm run pulumi -- config rm --path 'vms[${index}]' --stack ${stack}\n  ${up}\n`);
  for (const role of vms[index].roles)
    if (!vms.some((v) => v.name !== vm && v.roles.includes(role)))
      process.stdout.write(`  (first give the role ${role} to another VM: ${vm} was the only one with it)\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`vm:forget: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
