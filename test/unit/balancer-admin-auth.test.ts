import http from 'node:http';
import test from 'ava';
import { createAdminAuth, SESSION_COOKIE, SESSION_SECONDS } from '../../balancer/admin-auth';
import { startStatusServer, type StatusServer } from '../../balancer/status';

const TOKEN = 'Zq3-x_9vR2pL8mN4kT7wY1sB';
const request = (headers: http.IncomingHttpHeaders) => ({ headers }) as http.IncomingMessage;
const cookie = (value: string) => request({ cookie: `other=1; ${SESSION_COOKIE}=${value}` });

test('a Bearer header with the token passes; any other credential does not', (t) => {
  const auth = createAdminAuth(TOKEN);
  t.true(auth.allows(request({ authorization: `Bearer ${TOKEN}` })));
  t.true(auth.allows(request({ authorization: `bearer ${TOKEN}` })));
  for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ', ''])
    t.false(auth.allows(request({ authorization })), authorization);
  t.false(auth.allows(request({})));
  // The token itself is no session.
  t.false(auth.allows(cookie(TOKEN)));
});

test('a session passes until it expires, only with the token that made it, and cannot be altered', (t) => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const auth = createAdminAuth(TOKEN, () => now);
  const session = auth.newSession();
  t.false(session.includes(TOKEN));
  t.true(auth.allows(cookie(session)));
  t.not(auth.newSession(), session, 'each login gets its own session');
  // Another token (a new stack secret) ends every session.
  t.false(createAdminAuth(`${TOKEN}2`, () => now).allows(cookie(session)));
  // A later expiry with the old mac is refused.
  const [expires, nonce, mac] = session.split('.');
  t.false(auth.allows(cookie(`${Number(expires) + 3600}.${nonce}.${mac}`)));
  t.false(auth.allows(cookie(`${expires}.${nonce}x.${mac}`)));
  t.false(auth.allows(cookie(`${expires}.${nonce}.${mac.slice(0, -1)}`)));
  t.false(auth.allows(cookie('garbage')));
  now += (SESSION_SECONDS - 1) * 1000;
  t.true(auth.allows(cookie(session)));
  now += 2000;
  t.false(auth.allows(cookie(session)), 'expired');
});

let server: StatusServer;
const auth = createAdminAuth(TOKEN);
test.before(async () => {
  server = await startStatusServer(
    () => {
      throw new Error('the status is not asked here');
    },
    (req, res) => auth.routes(req, res),
  );
});
test.after.always(() => server?.close());

const login = (body: string, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.1:${server.port}/_balancer/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
    signal: AbortSignal.timeout(5000),
  });

test('the login form: the right token gets a session cookie and the evidence page, a wrong one the form again with a 401', async (t) => {
  const form = await fetch(`http://127.0.0.1:${server.port}/_balancer/login`, { signal: AbortSignal.timeout(5000) });
  t.is(form.status, 200);
  t.regex(await form.text(), /<form method="post" action="\/_balancer\/login">/);
  t.regex(form.headers.get('content-security-policy') ?? '', /form-action 'self'/);

  const ok = await login(new URLSearchParams({ token: TOKEN }).toString());
  t.is(ok.status, 303);
  t.is(ok.headers.get('location'), '/_balancer/evidence');
  const set = ok.headers.get('set-cookie') ?? '';
  t.regex(set, new RegExp(`^${SESSION_COOKIE}=[^;]+; Max-Age=${SESSION_SECONDS}; Path=/_balancer; HttpOnly; SameSite=Strict$`));
  t.false(set.includes(TOKEN));
  t.true(auth.allows(cookie(/=([^;]+)/.exec(set)![1])));

  for (const headers of [{ 'x-forwarded-proto': 'https' }, { 'x-admin-scheme': 'https' }] as Array<Record<string, string>>) {
    const secure = await login(new URLSearchParams({ token: TOKEN }).toString(), headers);
    t.regex(secure.headers.get('set-cookie') ?? '', /; Secure$/, JSON.stringify(headers));
  }

  const wrong = await login(new URLSearchParams({ token: `${TOKEN}x` }).toString());
  t.is(wrong.status, 401);
  t.is(wrong.headers.get('set-cookie'), null);
  t.regex(await wrong.text(), /That is not the admin token\./);

  const json = await login(JSON.stringify({ token: TOKEN }), { 'content-type': 'application/json' });
  t.is(json.status, 400);
  t.is(json.headers.get('set-cookie'), null);
});

test('/_balancer/auth answers nginx 204 or 401', async (t) => {
  const ask = (headers: Record<string, string>) =>
    fetch(`http://127.0.0.1:${server.port}/_balancer/auth`, { headers, signal: AbortSignal.timeout(5000) });
  t.is((await ask({ authorization: `Bearer ${TOKEN}` })).status, 204);
  t.is((await ask({ cookie: `${SESSION_COOKIE}=${auth.newSession()}` })).status, 204);
  t.is((await ask({})).status, 401);
});
