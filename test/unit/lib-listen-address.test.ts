import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import test from 'ava';
import { httpUrl } from '../../lib/endpoints';
import { isWildcardAddress, probeAddress } from '../../lib/listen-address';
import { parseConfig } from '../../service/config';

test('a wildcard listen address is probed on loopback of its family', (t) => {
  t.is(probeAddress('0.0.0.0'), '127.0.0.1');
  t.is(probeAddress('::'), '::1');
  t.true(isWildcardAddress('0.0.0.0'));
  t.true(isWildcardAddress('::'));
});

test('any other listen address is probed as it is', (t) => {
  for (const address of ['127.0.0.1', '::1', '10.0.0.7', 'fd00::7']) {
    t.is(probeAddress(address), address);
    t.false(isWildcardAddress(address));
  }
});

test('the service registers loopback when bound to a wildcard on a host with no external IPv4', (t) => {
  const facts = { hostname: 'h', interfaces: {} };
  t.is(parseConfig({ HOST: '0.0.0.0' }, facts).serviceAddress, '127.0.0.1');
  t.is(parseConfig({ HOST: '::' }, facts).serviceAddress, '::1');
});

test("balancer/Dockerfile's HEALTHCHECK probes where the lib rule says", (t) => {
  const dockerfile = fs.readFileSync(path.join(__dirname, '..', '..', 'balancer', 'Dockerfile'), 'utf8');
  const script = /HEALTHCHECK[^\n]*\\\n\s*CMD \["node", "-e", "(.*)"\]/.exec(dockerfile)?.[1];
  if (script === undefined) return t.fail('the HEALTHCHECK is no longer a node -e script');
  // Run the script in a sandbox with fetch replaced, so the test sees where it would probe.
  for (const listen of ['0.0.0.0', '::', '10.0.0.7', 'fd00::7']) {
    let url = '';
    const fetch = (target: string) => {
      url = target;
      return new Promise(() => undefined);
    };
    const proc = { env: { ADMIN_ADDRESS: listen, ADMIN_PORT: '8081' }, exit: () => undefined };
    vm.runInNewContext(script.replace(/\\"/g, '"'), { process: proc, fetch, AbortSignal });
    t.is(url, `${httpUrl(probeAddress(listen), 8081)}/_balancer/status`, listen);
  }
});
