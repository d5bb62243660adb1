import test from 'ava';
import { isWildcardAddress, probeAddress } from '../../lib/listen-address';
import { parseConfig } from '../../replica/config';

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
