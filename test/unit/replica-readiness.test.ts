// The replica's readiness probe (its Docker health check in the stack): ready only when Consul lists its
// SERVICE_ID among the passing instances and it answers /health on the port registered there.
import test from 'ava';
import { parseConfig } from '../../replica/config';
import { notReadyReason } from '../../replica/readiness-probe';

const config = parseConfig(
  {
    SERVICE_ID: 'cnp-x-replica-1-0123456789ab',
    SERVICE_NAME: 'hello',
    CONSUL_HTTP_ADDR: 'http://consul:8500',
    PORT: '21001-21040',
    HOST: '10.0.0.12',
  },
  { hostname: 'h', interfaces: {} },
);

/** Consul lists `passing` (id and registered port); the replica's /health answers `health`. */
function fakeFetch(health: number, passing: Array<[string, number]>, seen: string[] = []) {
  return async (url: string) => {
    seen.push(url);
    const body = url.includes('/v1/health/service/') ? passing.map(([ID, Port]) => ({ Service: { ID, Port } })) : {};
    const status = url.endsWith('/health') ? health : 200;
    return { ok: status < 300, status, json: async () => body };
  };
}

test('ready once Consul lists this replica as passing and /health answers on the port it registered', async (t) => {
  const seen: string[] = [];
  t.is(
    await notReadyReason(
      config,
      fakeFetch(
        200,
        [
          ['other', 21001],
          [config.serviceId, 21002],
        ],
        seen,
      ),
    ),
    undefined,
  );
  t.deepEqual(seen, ['http://consul:8500/v1/health/service/hello?passing', 'http://10.0.0.12:21002/health']);
});

test('not ready while Consul does not list it (no port to probe yet), or while it drains', async (t) => {
  const seen: string[] = [];
  t.is(await notReadyReason(config, fakeFetch(200, [['other', 21001]], seen)), 'cnp-x-replica-1-0123456789ab is not passing in Consul yet');
  t.deepEqual(seen, ['http://consul:8500/v1/health/service/hello?passing'], 'no /health probe without a registered port');
  t.is(await notReadyReason(config, fakeFetch(503, [[config.serviceId, 21002]])), '/health answered 503');
});
