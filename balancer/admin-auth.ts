// Who is asking at the admin listener (ADMIN_TOKEN_FILE): nginx asks the watcher's status server at
// /_balancer/auth before every admin request (render.ts adminFrontServer, auth_request), and the login form
// at /_balancer/login trades the token for a session cookie. See balancer/README.md, "Admin login".
import { createHmac, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import type http from 'node:http';
import type { ExtraRoutes } from './status';

export const ADMIN_AUTH_PATHS = {
  /** nginx's auth_request subrequest: 204 when the request carries the credential, else 401. */
  check: '/_balancer/auth',
  login: '/_balancer/login',
  /** Where a login lands. */
  landing: '/_balancer/evidence',
} as const;

export const SESSION_COOKIE = 'balancer_admin';
/** A login lasts a working day; then the browser asks for the token again. */
export const SESSION_SECONDS = 12 * 3600;
/** The login form's body holds the token and nothing else. */
const MAX_LOGIN_BODY = 4096;

export interface AdminAuth {
  /** True when the request carries `Authorization: Bearer <token>` or a live session cookie. */
  allows(req: http.IncomingMessage): boolean;
  /** A fresh session cookie's value: not the token, and useless once it expires. */
  newSession(): string;
  /** /_balancer/auth and /_balancer/login on the status server. */
  routes: ExtraRoutes;
}

const digest = (text: string) => createHash('sha256').update(text).digest();
/** Equal texts, compared in time that does not depend on where they differ (both hashed to one length). */
const sameText = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

// The login page has no script and no style: only its own form may be submitted, to this origin.
const LOGIN_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function loginPage(problem?: string): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>Balancer admin login</title></head><body>',
    '<h1>Balancer admin login</h1>',
    '<p>The admin listener asks for the admin token (the file ADMIN_TOKEN_FILE names; the stack output balancerAdminToken).</p>',
    ...(problem ? [`<p id="problem" role="alert">${problem}</p>`] : []),
    `<form method="post" action="${ADMIN_AUTH_PATHS.login}">`,
    '<label for="token">Admin token</label> <input id="token" name="token" type="password" autocomplete="current-password" required>',
    '<button id="login" type="submit">Log in</button>',
    '</form></body></html>',
  ].join('\n');
}

/** HTTPS as the client sees it: nginx names its listener's scheme; a TLS proxy in front names its own. */
function overHttps(req: http.IncomingMessage): boolean {
  const named = (name: string) =>
    String(req.headers[name] ?? '')
      .split(',')[0]
      .trim()
      .toLowerCase();
  return named('x-forwarded-proto') === 'https' || named('x-admin-scheme') === 'https';
}

function cookieValue(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_LOGIN_BODY) {
        resolve(undefined);
        req.destroy();
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', () => resolve(undefined));
  });
}

/**
 * The admin credential check for one token. A session is `<expires>.<nonce>.<mac>`, the mac an HMAC of
 * the rest keyed with the token: the cookie never holds the token, any balancer holding the same token
 * (a handover) accepts it, and a new token ends every session.
 */
export function createAdminAuth(token: string, now: () => number = Date.now): AdminAuth {
  const mac = (text: string) => createHmac('sha256', token).update(text).digest('base64url');

  const newSession = () => {
    const body = `${Math.floor(now() / 1000) + SESSION_SECONDS}.${randomBytes(16).toString('base64url')}`;
    return `${body}.${mac(body)}`;
  };

  const liveSession = (value: string | undefined) => {
    const match = value === undefined ? null : /^(\d{1,12})\.([\w-]{1,64})\.([\w-]{1,64})$/.exec(value);
    if (!match) return false;
    const [, expires, nonce, given] = match;
    return sameText(given, mac(`${expires}.${nonce}`)) && Number(expires) > now() / 1000;
  };

  const allows = (req: http.IncomingMessage) => {
    const bearer = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '');
    if (bearer) return sameText(bearer[1], token);
    return liveSession(cookieValue(req, SESSION_COOKIE));
  };

  const send = (res: http.ServerResponse, code: number, headers: Record<string, string>, body = '') => {
    res.writeHead(code, { ...LOGIN_HEADERS, ...headers, 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  };
  const page = (res: http.ServerResponse, code: number, problem?: string) =>
    send(res, code, { 'content-type': 'text/html; charset=utf-8' }, loginPage(problem));

  const login = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      .trim();
    const body = await readBody(req);
    if (type !== 'application/x-www-form-urlencoded' || body === undefined) {
      page(res, 400, 'Send the form: a token field, application/x-www-form-urlencoded, at most 4 KiB.');
      return;
    }
    const given = new URLSearchParams(body).get('token')?.trim() ?? '';
    if (!sameText(given, token)) {
      page(res, 401, 'That is not the admin token.');
      return;
    }
    const secure = overHttps(req) ? '; Secure' : '';
    send(res, 303, {
      location: ADMIN_AUTH_PATHS.landing,
      'set-cookie': `${SESSION_COOKIE}=${newSession()}; Max-Age=${SESSION_SECONDS}; Path=/_balancer; HttpOnly; SameSite=Strict${secure}`,
    });
  };

  const routes: ExtraRoutes = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === ADMIN_AUTH_PATHS.check) {
      send(res, allows(req) ? 204 : 401, {});
    } else if (path === ADMIN_AUTH_PATHS.login && (req.method === 'GET' || req.method === 'HEAD')) {
      page(res, 200);
    } else if (path === ADMIN_AUTH_PATHS.login && req.method === 'POST') {
      void login(req, res);
    } else if (path === ADMIN_AUTH_PATHS.login) {
      send(res, 405, { allow: 'GET, HEAD, POST', 'content-type': 'application/json' }, JSON.stringify({ error: 'method not allowed' }));
    } else {
      return false;
    }
    return true;
  };

  return { allows, newSession, routes };
}
