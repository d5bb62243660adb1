// The broker's registration step (run by the local.Command infra/broker.ts declares, after the ACL init
// step): registers the NATS server as service `nats` on the Consul agent of the broker's host, with an
// HTTP check on its monitoring /healthz (lib/broker-service.ts), idempotently. nats-server cannot
// register itself. Reads CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN (the broker role's token, which may write
// that one service) as Consul's own tools do, BROKER_ADDRESS (where clients and the agent's check reach
// the broker), BROKER_PORT (clients) and BROKER_MONITOR_PORT (the monitoring endpoint serving /healthz). On VMs the agent's API listens on the VM's loopback only: with ACL_SSH_TARGET,
// ACL_SSH_PORT and ACL_SSH_OPTS it goes through an SSH local forward to the broker's VM (lib/ssh-tunnel.ts).
import net from 'node:net';
import { brokerServiceDefinition, registerBroker } from '../lib/broker-service';
import { CONSUL_ADDRESS_ALLOWED, parseConsulAddress, parseConsulToken } from '../lib/consul-address';
import { envValue } from '../lib/config-error';
import { parseSshTunnelEnv, withConsulApi } from '../lib/ssh-tunnel';

function fail(message: string): never {
  process.stderr.write(`register-broker: ${message}\n`);
  process.exit(2);
}

/** A container name on the stack network or an IP address literal: never anything with URL syntax in it. */
const BROKER_ADDRESS = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

async function main(): Promise<void> {
  const addrText = envValue(process.env, 'CONSUL_HTTP_ADDR') ?? fail(`CONSUL_HTTP_ADDR is not set: use ${CONSUL_ADDRESS_ALLOWED}`);
  const address =
    parseConsulAddress(addrText) ?? fail(`CONSUL_HTTP_ADDR = ${JSON.stringify(addrText)} is not allowed: use ${CONSUL_ADDRESS_ALLOWED}`);
  const token = parseConsulToken(process.env) ?? fail("CONSUL_HTTP_TOKEN is not set: use the broker role's token");
  const broker = envValue(process.env, 'BROKER_ADDRESS') ?? '';
  if (!(net.isIP(broker) || BROKER_ADDRESS.test(broker)))
    fail(`BROKER_ADDRESS = ${JSON.stringify(broker)} is not allowed: use the broker's container name or an IP address literal`);
  const port = (name: string): number => {
    const text = envValue(process.env, name) ?? '';
    const value = Number(text);
    if (!/^[0-9]{1,5}$/.test(text) || value < 1 || value > 65535)
      fail(`${name} = ${JSON.stringify(text)} is not allowed: use a TCP port number from 1 to 65535`);
    return value;
  };
  const clientPort = port('BROKER_PORT');
  const monitorPort = port('BROKER_MONITOR_PORT');
  const ssh = parseSshTunnelEnv(process.env);

  const definition = brokerServiceDefinition({ address: broker, clientPort, monitorPort });
  const log = (line: string) => process.stdout.write(`register-broker: ${line}\n`);
  await withConsulApi(address, ssh, log, (url) => registerBroker(url, token, definition, { log }));
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
