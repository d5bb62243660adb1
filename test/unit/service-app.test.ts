import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createApp, MAX_BODY_BYTES } from '../../service/app';
import { createLogger } from '../../lib/logger';
import {
  pageOfIds,
  PAGE_LIMIT_DEFAULT,
  PAGE_LIMIT_MAX,
  StoreUnavailableError,
  type PageQuery,
  type User,
  type UserInput,
  type UsersStore,
} from '../../service/users-store';

/** In-memory stand-in for the Consul KV store; `down` makes every call fail as an unreachable Consul would. */
class MemoryUsers implements UsersStore {
  users = new Map<string, User>();
  down = false;
  private check() {
    if (this.down) throw new StoreUnavailableError('Consul KV read failed: connect ECONNREFUSED');
  }
  async page(query: PageQuery) {
    this.check();
    const { ids, next } = pageOfIds([...this.users.keys()].sort(), query);
    return { users: ids.map((id) => this.users.get(id)!), next };
  }
  async get(id: string) {
    this.check();
    return this.users.get(id);
  }
  async create(input: UserInput) {
    this.check();
    const now = new Date().toISOString();
    const user = { id: randomUUID(), ...input, createdAt: now, updatedAt: now };
    this.users.set(user.id, user);
    return user;
  }
  async update(id: string, input: UserInput) {
    this.check();
    const current = this.users.get(id);
    if (!current) return undefined;
    const user = { ...current, ...input };
    this.users.set(id, user);
    return user;
  }
  async remove(id: string) {
    this.check();
    return this.users.delete(id);
  }
}

function setup() {
  const users = new MemoryUsers();
  const lines: Array<Record<string, unknown>> = [];
  let draining = false;
  const app = createApp({
    serviceName: 'hello',
    serviceId: 'hello-test-1',
    hostname: 'box',
    version: '9.9.9',
    users,
    logger: createLogger({ instance: 'hello-test-1' }, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)),
    isDraining: () => draining,
  });
  const json = (method: string, path: string, body: unknown) =>
    app.request(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { app, users, lines, json, drain: () => (draining = true) };
}

const ann = { name: 'Ann', email: 'ann@example.com' };

test('GET / names the service, instance, hostname and version', async (t) => {
  const { app } = setup();
  const res = await app.request('/');
  t.is(res.status, 200);
  t.deepEqual(await res.json(), { service: 'hello', instance: 'hello-test-1', hostname: 'box', version: '9.9.9' });
  t.is(res.headers.get('x-instance-id'), 'hello-test-1');
});

test('health is 200 while serving and 503 while draining, and draining responses ask to close the connection', async (t) => {
  const { app, drain } = setup();
  const ok = await app.request('/health');
  t.is(ok.status, 200);
  t.is(ok.headers.get('connection'), null);
  drain();
  const draining = await app.request('/health');
  t.is(draining.status, 503);
  t.like(await draining.json(), { status: 'draining' });
  t.is(draining.headers.get('connection'), 'close');
  t.is((await app.request('/')).status, 200, 'requests still in flight are served while draining');
});

test('users: create, list, get, update, delete, then 404', async (t) => {
  const { app, json } = setup();
  const created = await json('POST', '/api/users', ann);
  t.is(created.status, 201);
  const user = (await created.json()) as User;
  t.regex(user.id, /^[0-9a-f-]{36}$/);
  t.like(user, ann);
  t.is(created.headers.get('location'), `/api/users/${user.id}`);

  const list = (await (await app.request('/api/users')).json()) as { users: User[] };
  t.deepEqual(
    list.users.map((u) => u.id),
    [user.id],
  );

  t.like(await (await app.request(`/api/users/${user.id}`)).json(), ann);

  const updated = await json('PUT', `/api/users/${user.id}`, { name: 'Ann B', email: 'annb@example.com' });
  t.is(updated.status, 200);
  t.like(await updated.json(), { id: user.id, name: 'Ann B', email: 'annb@example.com' });

  const deleted = await app.request(`/api/users/${user.id}`, { method: 'DELETE' });
  t.is(deleted.status, 204);
  t.is(deleted.headers.get('x-instance-id'), 'hello-test-1');

  for (const [method, body] of [['GET'], ['DELETE'], ['PUT', ann]] as const) {
    const res = body ? await json(method, `/api/users/${user.id}`, body) : await app.request(`/api/users/${user.id}`, { method });
    t.is(res.status, 404, `${method} after delete`);
    t.regex(((await res.json()) as { error: string }).error, /no user with id/);
  }
});

test('an id that randomUUID cannot have made is simply absent', async (t) => {
  const { app, json } = setup();
  t.is((await app.request('/api/users/..%2F..%2Fetc')).status, 404);
  t.is((await json('PUT', '/api/users/not-an-id', ann)).status, 404);
});

test('validation errors name the field', async (t) => {
  const { json, users } = setup();
  const cases: Array<[unknown, string]> = [
    [{ email: 'a@example.com' }, 'name'],
    [{ name: '', email: 'a@example.com' }, 'name'],
    [{ name: 'x'.repeat(101), email: 'a@example.com' }, 'name'],
    [{ name: 42, email: 'a@example.com' }, 'name'],
    [{ name: 'Ann' }, 'email'],
    [{ name: 'Ann', email: 'not-an-address' }, 'email'],
    [{ name: 'Ann', email: 'a@example.com', admin: true }, 'admin'],
    [[ann], 'body'],
    [null, 'body'],
    ['Ann', 'body'],
  ];
  for (const [body, field] of cases) {
    const res = await json('POST', '/api/users', body);
    t.is(res.status, 400, JSON.stringify(body));
    const answer = (await res.json()) as { field: string; error: string };
    t.is(answer.field, field, JSON.stringify(body));
    t.true(answer.error.includes(field), answer.error);
  }
  t.is(users.users.size, 0, 'nothing was stored');
});

test('NUL, escape sequences and other control characters in name or email are refused with the field named', async (t) => {
  const { json, users } = setup();
  const cases: Array<[unknown, string]> = [
    [{ name: 'Ann\u0000', email: 'a@example.com' }, 'name'],
    [{ name: 'A\u001b[31mnn', email: 'a@example.com' }, 'name'],
    [{ name: 'Ann\r\nX-Admin: 1', email: 'a@example.com' }, 'name'],
    [{ name: 'Ann\u007f', email: 'a@example.com' }, 'name'],
    [{ name: 'Ann\u0085', email: 'a@example.com' }, 'name'],
    [{ name: 'Ann', email: 'a\u0000@example.com' }, 'email'],
    [{ name: 'Ann', email: 'a@example.com\u0000' }, 'email'],
    [{ name: 'Ann', email: 'a@exam\u009bple.com' }, 'email'],
  ];
  for (const [body, field] of cases) {
    const res = await json('POST', '/api/users', body);
    t.is(res.status, 400, JSON.stringify(body));
    t.deepEqual(
      await res.json(),
      { field, error: `"${field}" must contain no control characters (U+0000 to U+001F, U+007F to U+009F)` },
      JSON.stringify(body),
    );
  }
  t.is(users.users.size, 0, 'nothing was stored');
  // Surrounding whitespace is still trimmed, and letters beyond ASCII still pass.
  const ok = await json('POST', '/api/users', { name: '\tZoë Ørsted \n', email: 'zoe@example.com' });
  t.is(ok.status, 201);
  t.like(await ok.json(), { name: 'Zoë Ørsted' });
});

test('error messages never echo a raw id or field name the client made up', async (t) => {
  const { app, json } = setup();
  const hostile = ['%3Cscript%3Ealert(1)%3C%2Fscript%3E', 'x'.repeat(2000), 'not-an-id%1B%5B2J'];
  for (const id of hostile) {
    for (const res of [
      await app.request(`/api/users/${id}`),
      await app.request(`/api/users/${id}`, { method: 'DELETE' }),
      await json('PUT', `/api/users/${id}`, ann),
    ]) {
      t.is(res.status, 404);
      t.deepEqual(await res.json(), { error: 'no user with this id; ids are the lowercase UUIDs this API returns' });
    }
  }
  const unknownUuid = randomUUID();
  t.deepEqual(await (await app.request(`/api/users/${unknownUuid}`)).json(), { error: `no user with id ${unknownUuid}` });

  const weirdField = await json('POST', '/api/users', { ...ann, '<b>\u0000admin</b>': true });
  t.is(weirdField.status, 400);
  t.deepEqual(await weirdField.json(), { field: '(unnamed)', error: 'an unknown field; allowed fields are "name" and "email"' });
});

test('malformed requests get JSON 4xx: bad JSON 400, wrong content type 415, oversized body 413', async (t) => {
  const { app, users } = setup();
  const badJson = await app.request('/api/users', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name": "Ann",',
  });
  t.is(badJson.status, 400);
  t.regex(((await badJson.json()) as { error: string }).error, /not valid JSON/);

  const text = await app.request('/api/users', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'Ann' });
  t.is(text.status, 415);
  t.is(text.headers.get('connection'), 'close', 'the unread body must not be taken for a next request');
  t.regex(((await text.json()) as { error: string }).error, /application\/json.*text\/plain/);

  const none = await app.request('/api/users', { method: 'POST', body: JSON.stringify(ann) });
  t.is(none.status, 415);

  const big = JSON.stringify({ name: 'Ann', email: 'ann@example.com', pad: 'x'.repeat(MAX_BODY_BYTES) });
  const withLength = await app.request('/api/users', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': String(big.length) },
    body: big,
  });
  t.is(withLength.status, 413);
  t.is(withLength.headers.get('connection'), 'close');
  t.regex(((await withLength.json()) as { error: string }).error, /larger than the limit/);

  // Chunked, no Content-Length: the limit is enforced while reading.
  const stream = new ReadableStream({
    start(controller) {
      for (let i = 0; i < 80; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)));
      controller.close();
    },
  });
  const chunked = await app.request('/api/users', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: stream,
    duplex: 'half',
  });
  t.is(chunked.status, 413);
  t.is(users.users.size, 0);
});

test('unknown paths get a JSON 404 and known paths with the wrong method a JSON 405', async (t) => {
  const { app } = setup();
  const missing = await app.request('/nope');
  t.is(missing.status, 404);
  t.regex(missing.headers.get('content-type') ?? '', /application\/json/);
  t.regex(((await missing.json()) as { error: string }).error, /GET \/nope/);
  t.is(missing.headers.get('x-instance-id'), 'hello-test-1');

  const wrong = await app.request('/api/users', { method: 'PATCH' });
  t.is(wrong.status, 405);
  t.regex(wrong.headers.get('allow') ?? '', /GET.*POST|POST.*GET/);
  t.regex(((await wrong.json()) as { error: string }).error, /PATCH/);
});

test('users endpoints answer 503 JSON while the store is unreachable; / and /health keep serving', async (t) => {
  const { app, json, users } = setup();
  users.down = true;
  for (const res of [
    await app.request('/api/users'),
    await json('POST', '/api/users', ann),
    await app.request(`/api/users/${randomUUID()}`),
    await app.request(`/api/users/${randomUUID()}`, { method: 'DELETE' }),
  ]) {
    t.is(res.status, 503);
    t.regex(((await res.json()) as { error: string }).error, /unavailable/);
    t.is(res.headers.get('x-instance-id'), 'hello-test-1');
  }
  t.is((await app.request('/health')).status, 200);
  t.is((await app.request('/')).status, 200);
});

test('an unexpected error becomes a JSON 500, logged, and the app keeps serving', async (t) => {
  const { app, users, lines } = setup();
  users.page = async () => {
    throw new TypeError('boom');
  };
  const res = await app.request('/api/users');
  t.is(res.status, 500);
  t.deepEqual(await res.json(), { error: 'internal error' });
  t.truthy(lines.find((l) => l.level === 'error' && l.error === 'boom'));
  t.is((await app.request('/health')).status, 200);
});

test('one JSON log line per request with time, level, instance, method, path, status, duration', async (t) => {
  const { app, lines } = setup();
  await app.request('/health');
  await app.request('/missing');
  const requests = lines.filter((l) => l.msg === 'request');
  t.is(requests.length, 2);
  t.like(requests[0], { level: 'info', instance: 'hello-test-1', method: 'GET', path: '/health', status: 200 });
  t.like(requests[1], { path: '/missing', status: 404 });
  for (const line of requests) {
    t.false(Number.isNaN(Date.parse(line.time as string)));
    t.is(typeof line.durationMs, 'number');
  }
});

test('GET /api/users pages: default and maximum limit, a cursor and a Link to the next page, each user once', async (t) => {
  const { app, users } = setup();
  for (let i = 0; i < PAGE_LIMIT_MAX + 6; i++) await users.create({ name: `U${i}`, email: `u${i}@example.com` });
  const ids = [...users.users.keys()].sort();

  const first = await app.request('/api/users');
  const body = (await first.json()) as { users: User[]; next: string | null };
  t.is(body.users.length, PAGE_LIMIT_DEFAULT);
  t.is(body.next, ids[PAGE_LIMIT_DEFAULT - 1]);
  t.is(first.headers.get('link'), `</api/users?limit=${PAGE_LIMIT_DEFAULT}&after=${body.next}>; rel="next"`);

  const max = (await (await app.request(`/api/users?limit=${PAGE_LIMIT_MAX}`)).json()) as { users: User[]; next: string };
  t.is(max.users.length, PAGE_LIMIT_MAX);
  const last = await app.request(`/api/users?limit=${PAGE_LIMIT_MAX}&after=${max.next}`);
  const rest = (await last.json()) as { users: User[]; next: string | null };
  t.deepEqual(
    [...max.users, ...rest.users].map((u) => u.id),
    ids,
  );
  t.is(rest.next, null);
  t.is(last.headers.get('link'), null);
});

test('GET /api/users refuses a bad limit or cursor with a 400 naming the parameter and what is allowed', async (t) => {
  const { app } = setup();
  for (const [query, param] of [
    ['limit=0', 'limit'],
    [`limit=${PAGE_LIMIT_MAX + 1}`, 'limit'],
    ['limit=ten', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=', 'limit'],
    ['limit=5&limit=6', 'limit'],
    ['after=not-an-id', 'after'],
    ['after=%3Cscript%3E', 'after'],
  ]) {
    const res = await app.request(`/api/users?${query}`);
    t.is(res.status, 400, query);
    const body = (await res.json()) as { error: string; param: string };
    t.is(body.param, param, query);
    t.regex(body.error, new RegExp(`^query parameter ${param} `), query);
    t.false(body.error.includes('script') || body.error.includes('ten'), `${query}: the client's text is not echoed`);
  }
  t.is((await app.request(`/api/users?limit=${PAGE_LIMIT_MAX}&after=${randomUUID()}&other=1`)).status, 200);
});
