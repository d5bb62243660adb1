// Code shared by the service and balancer bundles (esbuild inlines it into each).
import fs from 'node:fs';
import { ConfigError, envValue, readSecretFile } from './config-error';

/** Where the Consul agent's HTTP API is, split the way the `consul` client wants it. */
export interface ConsulAddress {
  secure: boolean;
  host: string;
  port: number;
  /** Normalised URL, for logs. */
  url: string;
}

/** Where a local Consul agent listens, when CONSUL_HTTP_ADDR is not set. */
export const DEFAULT_CONSUL_ADDRESS = 'http://127.0.0.1:8500';

/** What CONSUL_HTTP_ADDR may be, in words, for error messages. */
export const CONSUL_ADDRESS_ALLOWED = 'an http(s) URL with no path, or host:port, of the Consul agent, such as http://127.0.0.1:8500';

/**
 * Parses CONSUL_HTTP_ADDR: an http(s) URL with no path, or host:port (Consul's own tools accept it
 * without a scheme). Undefined when it is not one; the caller names the variable in its error.
 */
export function parseConsulAddress(text: string): ConsulAddress | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return undefined;
  }
  const hasPath = url.pathname !== '/' && url.pathname !== '';
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || hasPath || url.search || url.username) {
    return undefined;
  }
  const secure = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  // URL keeps IPv6 literals bracketed; the client wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { secure, host, port, url: `${url.protocol}//${url.host}` };
}

/** The variable Consul's own tools read an ACL token from; the service and the balancer read it too. */
export const CONSUL_TOKEN_ENV = 'CONSUL_HTTP_TOKEN';

/** What CONSUL_HTTP_TOKEN may be, in words, for error messages (the value itself is never echoed). */
export const CONSUL_TOKEN_ALLOWED = 'an ACL token: 1 to 128 printable ASCII characters without spaces, such as a UUID';

/**
 * The variable naming a file that holds the token, as Consul's own tools read it: how the stack hands
 * containers their token, so that `docker inspect` never shows it (infra/secret-files.ts).
 */
export const CONSUL_TOKEN_FILE_ENV = 'CONSUL_HTTP_TOKEN_FILE';

/**
 * The token from the environment, or from the file CONSUL_HTTP_TOKEN_FILE names (undefined: neither, Consul's
 * anonymous token); CONSUL_HTTP_TOKEN wins when both are set, as in Consul's CLI. Errors name the variable
 * (and the file) but never show the value: it is a secret.
 */
export function parseConsulToken(
  env: NodeJS.ProcessEnv,
  readFile: (file: string) => string = (f) => fs.readFileSync(f, 'utf8'),
): string | undefined {
  let value = envValue(env, CONSUL_TOKEN_ENV);
  let from = CONSUL_TOKEN_ENV;
  const file = envValue(env, CONSUL_TOKEN_FILE_ENV);
  if (value === undefined && file !== undefined) {
    from = `${CONSUL_TOKEN_FILE_ENV} (${file})`;
    value = readSecretFile(CONSUL_TOKEN_FILE_ENV, file, CONSUL_TOKEN_ALLOWED, readFile);
  }
  if (value === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,128}$/.test(value)) throw new ConfigError(`${from} is not allowed (value not shown): use ${CONSUL_TOKEN_ALLOWED}`);
  return value;
}
