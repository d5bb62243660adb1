// `npm run evidence -- [--url http://127.0.0.1:8080] [--admin-url http://127.0.0.1:8081] [--requests 200] [--stack dev] [--ca-file FILE]`
// Sends requests through the balancer's public port, each on a new connection, and prints how many each
// instance answered, then the upstream set the balancer serves now (/_balancer/status, on the admin
// listener: the public port shows no internal address). It sends only to the URLs given (or the stack's
// balancerUrl and balancerAdminUrl outputs, published on loopback by default): meant for your own stack.
// When the admin listener asks for a token (ADMIN_TOKEN_FILE), it is sent as a Bearer header: ADMIN_TOKEN
// from the environment (never an option: the command line is visible to every local user), else the stack's
// balancerAdminToken output when the admin URL comes from the stack.
// An https:// URL is verified against Node's CAs and the CA file given (--ca-file, or BALANCER_CA_FILE), or,
// with neither and the URLs from the stack, the stack's own CAs (balancerCaCertificate, internalCaCertificate).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BalancerStatusJson } from '../harness/balancer';
import { httpGet, sendAll, type RequestResult } from '../harness/load';
import { CA_FILE_VARIABLE, trustOptions } from '../harness/tls';

interface EvidenceOptions {
  url?: string;
  adminUrl?: string;
  requests: number;
  concurrency: number;
  stack: string;
  caFile?: string;
}

const USAGE =
  'usage: npm run evidence -- [--url http://127.0.0.1:8080] [--admin-url http://127.0.0.1:8081] [--requests 1..100000] [--concurrency 1..64] [--stack dev] [--ca-file FILE]';

function parseArgs(argv: string[]): EvidenceOptions {
  const options: EvidenceOptions = { requests: 200, concurrency: 4, stack: 'dev' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--url' || flag === '--admin-url') {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new Error(`${flag}: "${value}" is not a URL; expected e.g. http://127.0.0.1:${flag === '--url' ? 8080 : 8081}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new Error(`${flag}: only http:// and https:// are supported, got ${url.protocol}`);
      options[flag === '--url' ? 'url' : 'adminUrl'] = value.replace(/\/+$/, '');
    } else if (flag === '--requests' || flag === '--concurrency') {
      const max = flag === '--requests' ? 100_000 : 64;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${flag}: "${value}" is not a whole number from 1 to ${max}`);
      options[flag === '--requests' ? 'requests' : 'concurrency'] = n;
    } else if (flag === '--stack') {
      options.stack = value;
    } else if (flag === '--ca-file') {
      options.caFile = value;
    } else {
      throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  return options;
}

/**
 * A stack output (balancerUrl, balancerAdminUrl), read through scripts/stack.sh: the same Pulumi CLI (the
 * user's own, or the pinned npm wrapper's) and the same project-local backend as `npm run up`.
 */
function stackOutput(stack: string, output: string, flag: string, secret = false): Promise<string> {
  const script = path.resolve(__dirname, 'stack.sh');
  const args = [script, 'pulumi', 'stack', 'output', output, '--stack', stack, ...(secret ? ['--show-secrets'] : [])];
  return new Promise((resolve, reject) => {
    execFile('bash', args, { timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) {
        const why = stderr.trim().split('\n').slice(-3).join(' ') || error.message;
        reject(new Error(`no ${flag} given and the stack output ${output} of stack "${stack}" is unavailable: ${why}\n${USAGE}`));
      } else {
        resolve(stdout.trim());
      }
    });
  });
}

/** Requests per instance (its X-Instance-Id) with their share. */
function table(results: RequestResult[]): string {
  const rows = new Map<string, number>();
  for (const r of results.filter((r) => r.ok)) {
    const name = r.instance ?? '(no X-Instance-Id)';
    rows.set(name, (rows.get(name) ?? 0) + 1);
  }
  const failed = results.filter((r) => !r.ok).length;
  const lines: Array<[string, number]> = [...rows.entries()].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  lines.push(['(failed)', failed]);
  const width = Math.max(8, ...lines.map(([name]) => name.length));
  const pct = (n: number) => `${((100 * n) / results.length).toFixed(1)}%`;
  return [
    `${'instance'.padEnd(width)}  requests   share`,
    ...lines.map(([name, n]) => `${name.padEnd(width)}  ${String(n).padStart(8)}  ${pct(n).padStart(6)}`),
  ].join('\n');
}

async function balancerStatus(adminUrl: string, token: string | undefined): Promise<string> {
  try {
    const res = await httpGet(`${adminUrl}/_balancer/status`, token ? { authorization: `Bearer ${token}` } : {}, 5000);
    if (res.status === 401)
      return `/_balancer/status answered HTTP 401: the admin listener needs its token (${token ? 'the one given was refused' : 'set ADMIN_TOKEN'})`;
    if (res.status !== 200) return `/_balancer/status answered HTTP ${res.status}`;
    const status = JSON.parse(res.body) as BalancerStatusJson;
    const services = Object.entries(status.services ?? {});
    return [
      `routing table (/_balancer/status): ${services.length} service(s), changed at ${status.changedAt ?? 'never'}, ${status.reloads ?? 0} reload(s)`,
      ...services.flatMap(([name, s]) => [
        `  ${name}: routes ${s.routes.join(', ') || '(none)'}; ${s.upstreams.length} upstream(s)`,
        ...s.upstreams.map((u) => `    ${u}`),
      ]),
      ...(status.droppedRoutes ?? []).map((d) => `  dropped route ${d.service} ${d.route}: ${d.reason}`),
    ].join('\n');
  } catch (error) {
    return `/_balancer/status unreachable: ${String(error)}`;
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.caFile !== undefined) process.env[CA_FILE_VARIABLE] = options.caFile;
  // A CA file that cannot be read stops here, not as a failure of every request.
  trustOptions();
  const url = options.url ?? (await stackOutput(options.stack, 'balancerUrl', '--url'));
  const adminUrl = options.adminUrl ?? (await stackOutput(options.stack, 'balancerAdminUrl', '--admin-url'));
  if (!process.env[CA_FILE_VARIABLE]) {
    // The stack's own CAs for the https:// URLs it gave: the edge's (absent when the operator gave the
    // certificate: then the system's CAs verify it) and, on VMs, the admin listener's.
    const wanted = [
      ...(options.url === undefined && url.startsWith('https:') ? ['balancerCaCertificate'] : []),
      ...(options.adminUrl === undefined && adminUrl.startsWith('https:') ? ['internalCaCertificate'] : []),
    ];
    const cas = await Promise.all(wanted.map((output) => stackOutput(options.stack, output, '--ca-file').catch(() => '')));
    const pem = cas.filter((ca) => ca.includes('-----BEGIN CERTIFICATE-----')).join('\n');
    if (pem) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-evidence-'));
      process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      fs.writeFileSync(path.join(dir, 'ca.pem'), `${pem}\n`);
      process.env[CA_FILE_VARIABLE] = path.join(dir, 'ca.pem');
    }
  }
  // A stack without the output has an open admin listener: no token then.
  const token =
    process.env.ADMIN_TOKEN?.trim() ||
    (options.adminUrl === undefined
      ? await stackOutput(options.stack, 'balancerAdminToken', 'ADMIN_TOKEN', true).catch(() => undefined)
      : undefined);
  const results = await sendAll(`${url}/`, options.requests, options.concurrency);
  const failures = results.filter((r) => !r.ok);
  console.log(
    `${url}: ${results.length} requests, ${options.concurrency} at a time, a new connection each (failed = error, non-2xx or > 2 s)`,
  );
  console.log(table(results));
  for (const failure of failures.slice(0, 3)) console.log(`  failure: ${failure.status || 'no answer'} ${failure.error ?? ''}`.trimEnd());
  console.log(await balancerStatus(adminUrl, token));
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((error: Error) => {
  console.error(`evidence: ${error.message}`);
  process.exitCode = 2;
});
