import test from 'ava';
import { parseConfig as parseBalancerConfig } from '../../balancer/config';
import { parseConfig as parseStackConfig } from '../../infra/config';
import { ConfigError, configProblem, envValue, rejectConfig } from '../../lib/config-error';
import { parseConfig as parseServiceConfig } from '../../replica/config';

test('a problem names the variable, the value as given and what is allowed', (t) => {
  t.is(
    configProblem('PORT', 'eighty', 'a whole number from 1 to 65535'),
    'PORT = "eighty" is not allowed: use a whole number from 1 to 65535',
  );
});

test('rejectConfig throws a ConfigError carrying that message', (t) => {
  const error = t.throws(() => rejectConfig('WORK_DIR', 'tmp', 'an absolute path'), { instanceOf: ConfigError });
  t.is(error.message, 'WORK_DIR = "tmp" is not allowed: use an absolute path');
  t.is(error.name, 'ConfigError');
});

test('the service, the balancer and the stack word a bad value the same way', (t) => {
  const service = t.throws(() => parseServiceConfig({ SERVICE_NAME: 'web_1' }, { hostname: 'h', interfaces: {} }), {
    instanceOf: ConfigError,
  });
  const stack = t.throws(() => parseStackConfig({ serviceName: 'web_1' }));
  const facts = { hostname: 'h', interfaces: {} };
  const balancer = t.throws(() => parseBalancerConfig({ CONSUL_HTTP_ADDR: 'ftp://consul:21' }), { instanceOf: ConfigError });
  const serviceConsul = t.throws(() => parseServiceConfig({ CONSUL_HTTP_ADDR: 'ftp://consul:21' }, facts), { instanceOf: ConfigError });
  t.is(serviceConsul.message, balancer.message);
  t.true(stack.message.includes(`consul-nginx-pulumi:${service.message.replace('SERVICE_NAME', 'serviceName')}`), stack.message);
});

test('envValue trims, and reads unset, empty and blank alike as "not set"', (t) => {
  t.is(envValue({ A: ' 8080 ' }, 'A'), '8080');
  t.is(envValue({}, 'A'), undefined);
  t.is(envValue({ A: '' }, 'A'), undefined);
  t.is(envValue({ A: ' \t' }, 'A'), undefined);
});
