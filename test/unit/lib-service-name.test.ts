import test from 'ava';
import { routedServices } from '../../balancer/routing';
import { parseConfig as parseStackConfig } from '../../infra/config';
import { DEFAULT_SERVICE_NAME, isServiceName } from '../../lib/service-name';
import { parseConfig as parseServiceConfig } from '../../replica/config';

const facts = { hostname: 'h', interfaces: {} };

// Each part is asked through its own config parser, so a part that stops using the rule fails here.
const parts: Record<string, (name: string) => boolean> = {
  'lib rule': isServiceName,
  'stack config': (name) => accepts(() => parseStackConfig({ serviceName: name })),
  gateway: (name) => routedServices({ [name]: ['urlprefix-/x'] }).follow.includes(name),
  service: (name) => accepts(() => parseServiceConfig({ SERVICE_NAME: name }, facts)),
};

function accepts(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch {
    return false;
  }
}

const good = ['hello', 'a', '0', 'users-api', 'web-1', 'a'.repeat(63)];
// Underscores, dots and capitals are fine for Docker container names but not for a DNS label or an image name.
const bad = ['web_1', 'Hello', 'a.b', '-web', 'web-', 'a'.repeat(64), 'has space', 'x;', 'slash/name', 'ünï'];

for (const name of good) {
  test(`${JSON.stringify(name.length > 20 ? name.slice(0, 20) + '…' : name)} is a service name in every part`, (t) => {
    for (const [part, check] of Object.entries(parts)) t.true(check(name), part);
  });
}

for (const name of bad) {
  test(`${JSON.stringify(name.length > 20 ? name.slice(0, 20) + '…' : name)} is refused by every part`, (t) => {
    for (const [part, check] of Object.entries(parts)) t.false(check(name), part);
  });
}

test('every part uses the same default name', (t) => {
  t.true(isServiceName(DEFAULT_SERVICE_NAME));
  t.is(parseStackConfig({}).serviceName, DEFAULT_SERVICE_NAME);
  t.is(parseServiceConfig({}, facts).serviceName, DEFAULT_SERVICE_NAME);
});

test('an empty SERVICE_NAME means the default in the service', (t) => {
  t.is(parseServiceConfig({ SERVICE_NAME: '' }, facts).serviceName, DEFAULT_SERVICE_NAME);
});
