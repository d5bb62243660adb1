// The stack's ACL init step (run by the local.Command that infra/consul-acl.ts declares, after Consul is
// up): puts the policies and role tokens of the stack into Consul, idempotently. Reads its environment:
// CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN (the management token) as Consul's own tools do, plus
// ACL_SERVICE_NAME and ACL_AGENT_NODES (comma-separated node names of the Consul agents). With
// ACL_SSH_TARGET (user@host), ACL_SSH_PORT and ACL_SSH_OPTS (a JSON array of ssh options) it goes through
// an SSH local forward to that host, and CONSUL_HTTP_ADDR is Consul's address as that host reaches it (on
// VMs the API listens on the VM's loopback only): lib/ssh-tunnel.ts.
import { aclPlan, stackRoles } from '../lib/consul-acl';
import { applyAclPlan } from '../lib/consul-acl-apply';
import { CONSUL_ADDRESS_ALLOWED, parseConsulAddress, parseConsulToken } from '../lib/consul-address';
import { envValue } from '../lib/config-error';
import { isServiceName, SERVICE_NAME_ALLOWED } from '../lib/service-name';
import { parseSshTunnelEnv, withConsulApi } from '../lib/ssh-tunnel';

function fail(message: string): never {
  process.stderr.write(`acl-init: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const addrText = envValue(process.env, 'CONSUL_HTTP_ADDR') ?? fail(`CONSUL_HTTP_ADDR is not set: use ${CONSUL_ADDRESS_ALLOWED}`);
  const address =
    parseConsulAddress(addrText) ?? fail(`CONSUL_HTTP_ADDR = ${JSON.stringify(addrText)} is not allowed: use ${CONSUL_ADDRESS_ALLOWED}`);
  const token = parseConsulToken(process.env) ?? fail('CONSUL_HTTP_TOKEN is not set: use the management token');
  const serviceName = envValue(process.env, 'ACL_SERVICE_NAME') ?? '';
  if (!isServiceName(serviceName)) fail(`ACL_SERVICE_NAME = ${JSON.stringify(serviceName)} is not allowed: use ${SERVICE_NAME_ALLOWED}`);
  const nodes = (envValue(process.env, 'ACL_AGENT_NODES') ?? '').split(',').filter((n) => n !== '');
  if (nodes.length === 0 || nodes.some((n) => !/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(n)))
    fail(`ACL_AGENT_NODES = ${JSON.stringify(process.env.ACL_AGENT_NODES ?? '')} is not allowed: use comma-separated Consul node names`);
  const ssh = parseSshTunnelEnv(process.env);

  const plan = aclPlan(token, stackRoles(serviceName, nodes));
  const log = (line: string) => process.stdout.write(`acl-init: ${line}\n`);
  await withConsulApi(address, ssh, log, (url) => applyAclPlan(url, token, plan, { log }));
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
