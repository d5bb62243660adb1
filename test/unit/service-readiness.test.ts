// The replica's readiness probe (its Docker health check in the stack): ready only when it answers
// /health and Consul lists its SERVICE_ID among the passing instances.
import test from 'ava';
import { parseConfig } from '../../service/config';
import { notReadyReason } from '../../service/readiness-probe';

const config = parseConfig(
  {
    SERVICE_ID: 'cnp-x-replica-1-0123456789ab',
    SERVICE_NAME: 'hello',
    CONSUL_HTTP_ADDR: 'http://consul:8500',
    PORT: '8080',
    HOST: '0.0.0.0',
  },
  { hostname: 'h', interfaces: {} },
);

function fakeFetch(health: number, passing: string[], seen: string[] = []) {
  return async (url: string) => {
    seen.push(url);
    const body = url.includes('/v1/health/service/') ? passing.map((id) => ({ Service: { ID: id } })) : {};
    const status = url.endsWith('/health') ? health : 200;
    return { ok: status < 300, status, json: async () => body };
  };
}

test('ready once /health answers and Consul lists this replica as passing', async (t) => {
  const seen: string[] = [];
  t.is(await notReadyReason(config, fakeFetch(200, ['other', config.serviceId], seen)), undefined);
  t.deepEqual(seen, ['http://127.0.0.1:8080/health', 'http://consul:8500/v1/health/service/hello?passing']);
});

test('not ready while Consul does not list it, or while it drains', async (t) => {
  t.is(await notReadyReason(config, fakeFetch(200, ['other'])), 'cnp-x-replica-1-0123456789ab is not passing in Consul yet');
  t.is(await notReadyReason(config, fakeFetch(503, [config.serviceId])), '/health answered 503');
});
