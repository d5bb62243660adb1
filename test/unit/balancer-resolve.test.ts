import test from 'ava';
import { nameResolver, systemLookup, type LookupAll } from '../../balancer/resolve';

function scriptedLookup(answers: Record<string, string[] | Error | 'hang'>) {
  const asked: string[] = [];
  const lookup: LookupAll = (name) => {
    asked.push(name);
    const answer = answers[name];
    if (answer === 'hang') return new Promise(() => {});
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve(answer ?? []);
  };
  return { asked, lookup };
}

const enotfound = Object.assign(new Error('getaddrinfo ENOTFOUND does-not-exist.invalid'), { code: 'ENOTFOUND' });

test('each name is looked up once; failures, empty answers and slow answers carry their reason', async (t) => {
  const { asked, lookup } = scriptedLookup({
    'a.internal': ['10.0.0.1', '10.0.0.2'],
    'does-not-exist.invalid': enotfound,
    'empty.internal': [],
    'slow.internal': 'hang',
  });
  const resolve = nameResolver(lookup, 50);
  const started = Date.now();
  const result = await resolve(['a.internal', 'does-not-exist.invalid', 'empty.internal', 'slow.internal', 'a.internal']);
  t.deepEqual(Object.fromEntries(result), {
    'a.internal': { addresses: ['10.0.0.1', '10.0.0.2'] },
    'does-not-exist.invalid': { error: 'ENOTFOUND' },
    'empty.internal': { error: 'no address' },
    'slow.internal': { error: 'no answer within 50 ms' },
  });
  t.deepEqual(asked, ['a.internal', 'does-not-exist.invalid', 'empty.internal', 'slow.internal']);
  t.true(Date.now() - started >= 45, 'the slow name was waited for up to the timeout');
});

test('names are looked up in parallel: one round costs at most one timeout', async (t) => {
  const { lookup } = scriptedLookup({ 'a.internal': 'hang', 'b.internal': 'hang', 'c.internal': 'hang' });
  const started = Date.now();
  await nameResolver(lookup, 200)(['a.internal', 'b.internal', 'c.internal']);
  t.true(Date.now() - started < 500, `took ${Date.now() - started} ms for three hanging names`);
});

test('the system lookup resolves localhost from /etc/hosts and fails on a reserved name', async (t) => {
  const resolve = nameResolver(systemLookup());
  const result = await resolve(['localhost', 'does-not-exist.invalid']);
  const local = result.get('localhost')!;
  t.true('addresses' in local && local.addresses.includes('127.0.0.1'), JSON.stringify(local));
  const invalid = result.get('does-not-exist.invalid')!;
  t.true('error' in invalid, JSON.stringify(invalid));
});
